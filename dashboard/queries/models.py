"""Model and What-if questions: holdout confusion counts, single rows and example ids.

Single rows and example ids are row-level data: analysts and admins only, refused before the
query cache is asked (:func:`dashboard.auth.scoping.require_rows`); both read the scoped tables,
so a scoped analyst starts only from rows inside the scope."""
from __future__ import annotations

import ibis

from dashboard.auth.scoping import START_NOTE, require_rows
from dashboard.cache import memoized
from dashboard.queries.answers import first_row, has_table
from dashboard.source import table
from etl.schema import CUSTOMER_SCORES, ID_COLUMNS, SESSION_SCORES, SUBJECT_TABLES, TARGETS


@memoized()
def confusion(subject: str, threshold: float) -> dict:
    """Holdout confusion counts at ``threshold`` (tp, fp, fn, tn)."""
    scores = table(SESSION_SCORES if subject == "carts" else CUSTOMER_SCORES)
    facts = table(SUBJECT_TABLES[subject])
    key, target = ID_COLUMNS[subject], TARGETS[subject]
    p = "p_abandon" if subject == "carts" else "p_decline"
    j = scores.filter(scores.in_holdout).inner_join(facts.select(key, target), key)
    predicted, actual = j[p] >= threshold, j[target]
    return first_row(j.aggregate(tp=j.count(where=predicted & actual), fp=j.count(where=predicted & ~actual),
                            fn=j.count(where=~predicted & actual), tn=j.count(where=~predicted & ~actual)))


# --- what-if ----------------------------------------------------------------------------


def subject_row(subject: str, row_id: str | int) -> dict | None:
    """One session or customer by id, as a dict of warehouse columns; None when absent (or
    outside the user's scope)."""
    require_rows(START_NOTE)
    return _subject_row(subject, row_id)


@memoized()
def _subject_row(subject: str, row_id: str | int) -> dict | None:
    t = table(SUBJECT_TABLES[subject])
    key = ID_COLUMNS[subject]
    found = t.filter(t[key] == row_id).limit(1).to_pyarrow().to_pylist()
    return found[0] if found else None


def example_ids(subject: str, limit: int = 8) -> list:
    """A few real ids to start from: the highest-risk scored rows when there are scores."""
    require_rows(START_NOTE)
    return _example_ids(subject, limit)


@memoized()
def _example_ids(subject: str, limit: int) -> list:
    key = ID_COLUMNS[subject]
    scores_name = SESSION_SCORES if subject == "carts" else CUSTOMER_SCORES
    if has_table(scores_name):
        s = table(scores_name)
        p = "p_abandon" if subject == "carts" else "p_decline"
        return s.order_by(ibis.desc(p), key).limit(limit)[key].to_pyarrow().to_pylist()
    t = table(SUBJECT_TABLES[subject])
    return t.order_by(key).limit(limit)[key].to_pyarrow().to_pylist()

