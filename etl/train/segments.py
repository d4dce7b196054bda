"""Customer segments marketing can act on (seed 002, sections 8–9), each with an offer.

Two kinds, both stored in the ``segments`` table and referenced from ``customer_scores``:

* **rule** — the seed's segment made explicit: promo-heavy customers (at least half of their
  purchases on promotion) with a high predicted decline probability, crossed with profit so
  marketing spends on those worth keeping. Every customer gets one; low risk is "other".
* **cluster** — k-means on scaled behaviour columns, k chosen by silhouette; clusters are
  numbered by falling mean decline probability (cluster_1 is the most at risk).

A segment's offer comes from its distinctive drivers of decline (features whose mean
contribution towards decline in the segment most exceeds the average customer's) read
against its profile (above or below the overall mean): e.g. many unpaid items -> a reminder
with a promo code; few categories viewed -> cross-category recommendations.
"""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from etl.schema import CUSTOMER_CONTRIBUTIONS, CUSTOMER_SCORES, CUSTOMERS, label
from etl.train.dataset import SEED

PROMO_HEAVY_SHARE = 0.5   # promo share is bimodal on the real data (most < 0.4, a group > 0.8)
CLUSTER_FEATURES = ("marketing_6m", "promo_share", "categories_per_visit", "unpaid_items_quarter",
                    "service_errors", "pages_per_visit", "minutes_last_month", "minutes_this_month",
                    "revenue_last_month")
CLUSTER_K = (3, 4, 5, 6)
CLUSTER_ROWS = 20_000
SILHOUETTE_ROWS = 10_000  # silhouette is O(n²): measured on a sample
FAST_CLUSTER_K = (3, 4)

# segment_id -> (name, description); "{...}" are filled from the rule thresholds
RULE_SEGMENTS = {
    "promo_risk_high_profit": ("Promo-heavy · high risk · high profit",
                               "The seed's segment worth keeping: promo share >= {promo}, "
                               "P(decline) >= {risk}, monthly profit >= {profit} (the median)."),
    "promo_risk_low_profit": ("Promo-heavy · high risk · low profit",
                              "Promo share >= {promo}, P(decline) >= {risk}, profit below {profit}: "
                              "only offers cheaper than what they bring."),
    "risk_high_profit": ("High risk · high profit",
                         "Not promo-driven, P(decline) >= {risk}, profit >= {profit}."),
    "risk_low_profit": ("High risk · low profit",
                        "Not promo-driven, P(decline) >= {risk}, profit below {profit}."),
    "other": ("Other · low risk", "P(decline) below {risk}: no retention offer needed."),
}

# (feature, customers lie above/below the overall mean) -> offer
OFFERS = {
    ("unpaid_items_quarter", "above"): "Reminder of the unpaid items left in the cart, with a time-limited promo code on them",
    ("promo_share", "above"): "Personal promo codes in their favourite category, announced before the next sale",
    ("categories_per_visit", "below"): "Cross-category recommendations next to their favourite category",
    ("pages_per_visit", "below"): "Personalised home page and 'you may also like' blocks to deepen visits",
    ("minutes_last_month", "below"): "Re-engagement e-mail with new arrivals in their favourite category",
    ("minutes_this_month", "below"): "Re-engagement e-mail with new arrivals in their favourite category",
    ("marketing_6m", "below"): "Add them to the regular campaign calendar: they hear from the store less than most",
    ("marketing_this_month", "below"): "Add them to this month's campaigns: they were barely contacted",
    ("service_errors", "above"): "Apology with a service credit, and their errors routed to the site team",
    ("revenue_2m_ago", "below"): "Welcome-back bundle in their favourite category to rebuild the basket",
    ("tenure_days", "above"): "Loyalty reward for long-standing customers (points or free delivery)",
}
LOW_RISK_OFFER = "No retention offer: regular newsletter only"
FALLBACK_OFFER = "Personal offer in their favourite category"


def rule_thresholds(train: pd.DataFrame, risk_threshold: float) -> dict:
    return {"promo_share": PROMO_HEAVY_SHARE, "p_decline": risk_threshold,
            "profit": round(float(train["profit"].median()), 4)}


def rule_segment(promo_share: np.ndarray, p: np.ndarray, profit: np.ndarray, thresholds: dict) -> np.ndarray:
    """Segment id per customer (vectorised)."""
    risky = p >= thresholds["p_decline"]
    promo = promo_share >= thresholds["promo_share"]
    rich = profit >= thresholds["profit"]
    return np.select([~risky, promo & rich, promo, rich],
                     ["other", "promo_risk_high_profit", "promo_risk_low_profit", "risk_high_profit"],
                     default="risk_low_profit")


def fit_clusters(frame: pd.DataFrame, p: np.ndarray, *, fast: bool) -> tuple[Pipeline, dict]:
    """k-means on scaled behaviour (k by silhouette) and a relabelling by mean P(decline).

    Fitted on at most ``CLUSTER_ROWS`` customers (centres are stable long before that), the
    silhouette measured on at most ``SILHOUETTE_ROWS``; every customer is assigned at scoring.
    """
    X = frame[list(CLUSTER_FEATURES)].astype(float).to_numpy()
    rng = np.random.default_rng(SEED)
    if len(X) > CLUSTER_ROWS:
        keep = rng.choice(len(X), CLUSTER_ROWS, replace=False)
        X, p = X[keep], p[keep]
    probe = X if len(X) <= SILHOUETTE_ROWS else X[rng.choice(len(X), SILHOUETTE_ROWS, replace=False)]
    silhouettes, models = {}, {}
    for k in FAST_CLUSTER_K if fast else CLUSTER_K:
        models[k] = Pipeline([("scale", StandardScaler()),
                              ("kmeans", KMeans(n_clusters=k, n_init=10, random_state=SEED))]).fit(X)
        silhouettes[k] = float(silhouette_score(models[k]["scale"].transform(probe),
                                                models[k].predict(probe), random_state=SEED))
    k = max(silhouettes, key=silhouettes.get)
    labels = models[k].predict(X)
    by_risk = sorted(range(k), key=lambda c: -p[labels == c].mean())
    return models[k], {"features": list(CLUSTER_FEATURES), "k": k, "method": "k-means on standardised behaviour",
                       "silhouette": {str(kk): round(s, 4) for kk, s in silhouettes.items()},
                       "names": {str(c): f"cluster_{rank + 1}" for rank, c in enumerate(by_risk)}}


def assign_clusters(model: Pipeline, info: dict, frame: pd.DataFrame) -> np.ndarray:
    raw = model.predict(frame[info["features"]].astype(float).to_numpy())
    return np.array([info["names"][str(c)] for c in range(info["k"])], dtype=object)[raw]


def _profiles(con: duckdb.DuckDBPyConnection, column: str, numeric: list[str], bools: list[str],
              categorical: list[str]) -> tuple[pd.DataFrame, pd.Series, pd.Series, dict]:
    """Per-segment size, risk, profit and feature means; overall means/stds; modes."""
    averages = [f'avg(c."{f}")::DOUBLE AS "{f}"' for f in numeric] + \
               [f'avg(c."{f}"::INTEGER)::DOUBLE AS "{f}"' for f in bools]
    base = f"FROM {CUSTOMER_SCORES} s JOIN {CUSTOMERS} c USING (customer_id)"
    per = con.execute(f"""SELECT s."{column}" AS segment_id, count(*) AS customers,
                          avg(s.p_decline) AS mean_p_decline, sum(c.profit) AS total_profit,
                          {", ".join(averages)} {base} GROUP BY 1 ORDER BY 1""").df().set_index("segment_id")
    overall = con.execute(f"SELECT {', '.join(averages)} {base}").df().iloc[0]
    spread = con.execute("SELECT " + ", ".join(
        f'stddev_pop(c."{f}"::DOUBLE) AS "{f}"' for f in numeric + bools) + f" {base}").df().iloc[0]
    modes = {}   # feature -> (most common value per segment, over all customers)
    for f in categorical:
        counts = con.execute(f"""SELECT s."{column}" AS segment_id, c."{f}" AS value, count(*) AS n {base}
                                 GROUP BY ALL ORDER BY segment_id, n DESC, value""").df()
        modes[f] = (counts.groupby("segment_id")["value"].first().to_dict(),
                    con.execute(f"""SELECT c."{f}" {base} GROUP BY 1 ORDER BY count(*) DESC, 1
                                    LIMIT 1""").fetchone()[0])
    return per, overall, spread, modes


def _drivers(con: duckdb.DuckDBPyConnection, column: str) -> tuple[pd.DataFrame, pd.Series]:
    """Mean contribution towards decline per segment and feature, and over all customers."""
    per = con.execute(f"""SELECT s."{column}" AS segment_id, k.feature, avg(k.contribution) AS mean_contribution
                          FROM {CUSTOMER_CONTRIBUTIONS} k JOIN {CUSTOMER_SCORES} s USING (customer_id)
                          GROUP BY ALL""").df()
    overall = con.execute(f"SELECT feature, avg(contribution) FROM {CUSTOMER_CONTRIBUTIONS} GROUP BY 1").fetchall()
    return per, pd.Series(dict(overall), dtype=float)


def offer(drivers: pd.Series, overall: pd.Series, direction: dict[str, str], mean_p: float,
          risk_threshold: float) -> str:
    """Up to two offers from what pushes this segment towards decline more than the average customer.

    Drivers are features with a positive mean contribution in the segment, ranked by how much
    it exceeds the mean contribution over all customers (what sets this segment apart); each
    is read with the segment's profile (above/below the overall mean) to pick an offer.
    """
    if mean_p < risk_threshold:
        return (f"{LOW_RISK_OFFER} — mean P(decline) {mean_p:.2f} is below the decision "
                f"threshold {risk_threshold:.2f}.")
    excess = (drivers - overall.reindex(drivers.index).fillna(0))[drivers > 0]
    chosen: dict[str, str] = {}   # offer -> why
    for feature in excess[excess > 0].sort_values(ascending=False).index:
        text = OFFERS.get((feature, direction.get(feature)))
        if text and text not in chosen:
            chosen[text] = (f"driver: {label(feature).lower()} ({direction[feature]} average, "
                            f"+{drivers[feature]:.2f} log-odds towards decline)")
        if len(chosen) == 2:
            break
    return "; also: ".join(f"{text} — {why}" for text, why in chosen.items()) + "." if chosen else (
        f"{FALLBACK_OFFER} — no single behaviour stands out among its drivers of decline.")


def segment_rows(con: duckdb.DuckDBPyConnection, specs: dict, *, rule: dict) -> pd.DataFrame:
    """The ``segments`` table: one row per rule segment and cluster present in customer_scores.

    ``specs`` (see :func:`etl.train.features.feature_specs`) names the profiled columns.
    """
    numeric = [f for f, s in specs.items() if s["kind"] in ("int", "float")]
    bools = [f for f, s in specs.items() if s["kind"] == "bool"]
    categorical = [f for f, s in specs.items() if s["kind"] == "category"]
    fill = {"promo": rule["promo_share"], "risk": f"{rule['p_decline']:.2f}", "profit": f"{rule['profit']:g}"}
    rows = []
    for kind, column in (("rule", "segment"), ("cluster", "cluster")):
        per, overall, spread, modes = _profiles(con, column, numeric, bools, categorical)
        drivers, overall_drivers = _drivers(con, column)
        for segment_id, seg in per.iterrows():
            z = {f: (seg[f] - overall[f]) / spread[f] if spread[f] > 0 else 0.0 for f in numeric + bools}
            direction = {f: "above" if seg[f] > overall[f] else "below" for f in numeric + bools}
            profile = {f: {"label": label(f), "segment": round(float(seg[f]), 3),
                           "overall": round(float(overall[f]), 3)} for f in numeric + bools}
            profile.update({f: {"label": label(f), "segment": modes[f][0].get(segment_id),
                                "overall": modes[f][1]} for f in categorical})
            seg_drivers = drivers[drivers["segment_id"] == segment_id].set_index("feature")["mean_contribution"]
            text = offer(seg_drivers, overall_drivers, direction, float(seg["mean_p_decline"]),
                         rule["p_decline"])
            standout = sorted(z, key=lambda f: -abs(z[f]))[:3]
            traits = [f"{'high' if z[f] > 0 else 'low'} {label(f).lower()} "
                      f"({seg[f]:.3g} vs {overall[f]:.3g})" for f in standout]
            if kind == "rule":
                name, description = RULE_SEGMENTS[segment_id]
                description = description.format(**fill) + " Stands out by: " + "; ".join(traits) + "."
            else:
                name = f"Cluster {segment_id.split('_')[1]}: " + ", ".join(t.split(" (")[0] for t in traits[:2])
                description = "Behaviour cluster: " + "; ".join(traits) + "."
            rows.append({"segment_id": segment_id, "kind": kind, "name": name, "description": description,
                         "customers": int(seg["customers"]), "mean_p_decline": float(seg["mean_p_decline"]),
                         "total_profit": float(seg["total_profit"]),
                         "profile": json.dumps(profile, ensure_ascii=False),
                         "offer": text})
    return pd.DataFrame(rows)

