"""Score every row of the warehouse in batches and write the results back.

Rows stream out of DuckDB ``BATCH_ROWS`` at a time (Arrow record batches), so memory stays
bounded whatever the table size; each scored batch is appended to its table in the staged
copy of the warehouse that :mod:`etl.train.run` publishes only when everything succeeded.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import duckdb
import numpy as np
import pandas as pd

from etl.schema import (CUSTOMER_CONTRIBUTIONS, CUSTOMER_SCORES, FEATURE_IMPORTANCES,
                        SESSION_SCORES, TABLES)
from etl.train import explain, segments
from etl.train.contributions import Explainer
from etl.warehouse import write_table

BATCH_ROWS = 1_000_000
CONTRIBUTION_ROWS = 50_000   # rows explained per call: bounds the preprocessed copy and the SHAP matrix


def _create(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """An empty table with the contract's columns and types."""
    write_table(con, name, pd.DataFrame({c: pd.Series(dtype=object) for c in TABLES[name]}))


def _append(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    columns = TABLES[name]
    con.register("_batch", frame[list(columns)])
    select = ", ".join(f'CAST("{c}" AS {t})' for c, t in columns.items())
    con.execute(f'INSERT INTO "{name}" SELECT {select} FROM _batch')
    con.unregister("_batch")


def _stream(con: duckdb.DuckDBPyConnection, table: str, id_column: str, columns: list[str],
            holdout_ids: list) -> Iterator[pd.DataFrame]:
    """Batches of ``id + columns + in_holdout`` from a cursor of its own (writes continue on ``con``)."""
    reader = con.cursor()
    reader.register("_holdout", pd.DataFrame({id_column: pd.Series(holdout_ids, dtype=object)}))
    select = ", ".join(f't."{c}"' for c in dict.fromkeys([id_column, *columns]))
    result = reader.execute(f"""
        SELECT {select}, h."{id_column}" IS NOT NULL AS in_holdout
        FROM "{table}" t LEFT JOIN (SELECT DISTINCT CAST("{id_column}" AS {TABLES[table][id_column]}) AS "{id_column}"
                                   FROM _holdout) h USING ("{id_column}")""")
    for batch in result.to_arrow_reader(BATCH_ROWS):
        yield batch.to_pandas()
    reader.close()


def probabilities(model, frame: pd.DataFrame, features: list[str], id_column: str,
                  oof: pd.Series | None) -> np.ndarray:
    """P(positive) per row; rows with an out-of-fold probability get that one instead."""
    p = model.predict_proba(frame[features])[:, 1]
    if oof is None:
        return p
    known = frame[id_column].map(oof).to_numpy(dtype=float)
    return np.where(np.isnan(known), p, known)


def score_sessions(con: duckdb.DuckDBPyConnection, model, card: dict, table: str, id_column: str,
                   oof: pd.Series | None, progress: Callable[[str], None]) -> int:
    """session_scores for every session; returns the number of rows scored."""
    _create(con, SESSION_SCORES)
    done = 0
    for batch in _stream(con, table, id_column, card["features"], card["holdout_ids"]):
        p = probabilities(model, batch, card["features"], id_column, oof)
        _append(con, SESSION_SCORES, pd.DataFrame({
            "session_id": batch[id_column], "p_abandon": p,
            "predicted_abandoned": p >= card["threshold"], "in_holdout": batch["in_holdout"]}))
        done += len(batch)
        progress(f"  scored {done:,} sessions")
    return done


def score_customers(con: duckdb.DuckDBPyConnection, model, explainer: Explainer, card: dict, table: str,
                    id_column: str, clusters, oof: pd.Series | None, progress: Callable[[str], None]) -> int:
    """customer_scores (with segment, cluster, reasons) and customer_contributions for every
    customer; the contributions and reasons come from ``explainer`` (of ``model``)."""
    _create(con, CUSTOMER_SCORES)
    _create(con, CUSTOMER_CONTRIBUTIONS)
    features, rule = card["features"], card["segments"]["rule_thresholds"]
    needed = [*features, *card["segments"]["cluster"]["features"], "promo_share", "profit"]
    done = 0
    for batch in _stream(con, table, id_column, needed, card["holdout_ids"]):
        for start in range(0, len(batch), CONTRIBUTION_ROWS):
            part = batch.iloc[start:start + CONTRIBUTION_ROWS].reset_index(drop=True)
            p = probabilities(model, part, features, id_column, oof)
            contrib = explainer.explain(part[features]).contributions
            _append(con, CUSTOMER_SCORES, pd.DataFrame({
                "customer_id": part[id_column], "p_decline": p,
                "predicted_declined": p >= card["threshold"], "in_holdout": part["in_holdout"],
                "segment": segments.rule_segment(part["promo_share"].to_numpy(), p,
                                                 part["profit"].to_numpy(), rule),
                "cluster": segments.assign_clusters(clusters, card["segments"]["cluster"], part),
                "expected_profit_at_risk": p * part["profit"].to_numpy(),
                "top_reasons": explain.top_reasons(contrib, part, card["baseline"])}))
            _append(con, CUSTOMER_CONTRIBUTIONS, pd.DataFrame({
                "customer_id": np.repeat(part[id_column].to_numpy(), len(features)),
                "feature": np.tile(np.array(features, dtype=object), len(part)),
                "value": part[features].map(explain.format_value).to_numpy().ravel(),
                "contribution": contrib.to_numpy().ravel()}))
        done += len(batch)
        progress(f"  scored {done:,} customers")
    return done


def write_importances(con: duckdb.DuckDBPyConnection, subject: str, importances: list[dict]) -> None:
    """Replace this subject's rows of feature_importances, keeping the other subject's."""
    present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    others = (con.execute(f"SELECT * FROM {FEATURE_IMPORTANCES} WHERE subject <> ?", [subject]).df()
              if FEATURE_IMPORTANCES in present else pd.DataFrame(columns=list(TABLES[FEATURE_IMPORTANCES])))
    ours = pd.DataFrame(importances).assign(subject=subject)
    write_table(con, FEATURE_IMPORTANCES, pd.concat([others, ours], ignore_index=True))
