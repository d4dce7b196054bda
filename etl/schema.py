"""The warehouse contract: table names, columns, types and the human labels the UI shows.

Everything downstream (training, dashboard) refers to columns through this module, so a
rename happens here once. Internal names are English snake_case; the raw Russian and Spanish
terms live only in :mod:`etl.raw_specs` and as value labels below.
"""
from __future__ import annotations

# --- tables written by `python -m etl run` --------------------------------------------

SESSIONS = "sessions"
CUSTOMERS = "customers"
REJECTED_ROWS = "rejected_rows"
SOURCE_FILES = "source_files"
ETL_RUNS = "etl_runs"

# --- tables written by `python -m etl train` ------------------------------------------

SESSION_SCORES = "session_scores"
CUSTOMER_SCORES = "customer_scores"
CUSTOMER_CONTRIBUTIONS = "customer_contributions"
FEATURE_IMPORTANCES = "feature_importances"
SEGMENTS = "segments"
MODEL_CARDS = "model_cards"

# column -> DuckDB type, in the published order
SESSIONS_COLUMNS: dict[str, str] = {
    "session_id": "VARCHAR",
    "product_details_viewed": "BOOLEAN",
    "session_activity_count": "INTEGER",
    "items_added": "INTEGER",
    "items_removed": "INTEGER",
    "cart_views": "INTEGER",
    "checkout_initiated": "INTEGER",
    "checkout_confirmed": "INTEGER",
    "cart_item_views": "INTEGER",
    "customer_logins": "INTEGER",
    "pages_viewed": "INTEGER",
    "customer_segment": "INTEGER",
    "abandoned": "BOOLEAN",
}

CUSTOMERS_COLUMNS: dict[str, str] = {
    "customer_id": "BIGINT",
    "activity_declined": "BOOLEAN",
    "service_tier": "VARCHAR",
    "marketing_consent": "BOOLEAN",
    "marketing_6m": "DOUBLE",
    "marketing_this_month": "INTEGER",
    "tenure_days": "INTEGER",
    "promo_share": "DOUBLE",
    "top_category": "VARCHAR",
    "categories_per_visit": "INTEGER",
    "unpaid_items_quarter": "INTEGER",
    "service_errors": "INTEGER",
    "pages_per_visit": "INTEGER",
    "revenue_2m_ago": "DOUBLE",
    "revenue_last_month": "DOUBLE",
    "revenue_this_month": "DOUBLE",
    "minutes_last_month": "INTEGER",
    "minutes_this_month": "INTEGER",
    "profit": "DOUBLE",
}

REJECTED_ROWS_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "subject": "VARCHAR",          # carts | customers
    "source_file": "VARCHAR",      # file name relative to the raw folder
    "source_row": "BIGINT",        # 1-based line number in the file, header is line 1
    "column_name": "VARCHAR",      # raw column that broke the rule ('' for whole-row rules)
    "rule": "VARCHAR",             # short machine name of the rule
    "reason": "VARCHAR",           # human sentence
    "raw_values": "VARCHAR",       # JSON object of the row's raw cells
}

SOURCE_FILES_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "subject": "VARCHAR",
    "source_file": "VARCHAR",
    "rows_read": "BIGINT",
    "rows_rejected": "BIGINT",
    "encoding": "VARCHAR",
    "separator": "VARCHAR",
    "decimal": "VARCHAR",
    "sha256": "VARCHAR",
}

ETL_RUNS_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "data_version": "VARCHAR",     # fingerprint of the raw inputs + ETL code version
    "started_at": "TIMESTAMP",
    "finished_at": "TIMESTAMP",
    "raw_dir": "VARCHAR",
    "rows_in": "BIGINT",
    "rows_out": "BIGINT",
    "rows_rejected": "BIGINT",
    "sessions": "BIGINT",
    "customers": "BIGINT",
}

# Scores written back by training (see etl/train). The dashboard reads these.
SESSION_SCORES_COLUMNS: dict[str, str] = {
    "session_id": "VARCHAR",
    "p_abandon": "DOUBLE",
    "predicted_abandoned": "BOOLEAN",   # p_abandon >= the card's threshold
    "in_holdout": "BOOLEAN",
}

CUSTOMER_SCORES_COLUMNS: dict[str, str] = {
    "customer_id": "BIGINT",
    "p_decline": "DOUBLE",
    "predicted_declined": "BOOLEAN",
    "in_holdout": "BOOLEAN",
    "segment": "VARCHAR",               # segments.segment_id of the rule-based segment
    "cluster": "VARCHAR",               # segments.segment_id of the behavioural cluster
    "expected_profit_at_risk": "DOUBLE",  # p_decline * profit
    "top_reasons": "VARCHAR",           # human text: the three largest contributions to decline
}

CUSTOMER_CONTRIBUTIONS_COLUMNS: dict[str, str] = {
    "customer_id": "BIGINT",
    "feature": "VARCHAR",
    "value": "VARCHAR",
    "contribution": "DOUBLE",           # log-odds contribution towards decline
}

FEATURE_IMPORTANCES_COLUMNS: dict[str, str] = {
    "subject": "VARCHAR",
    "feature": "VARCHAR",
    "importance_mean": "DOUBLE",        # permutation importance, drop in holdout ROC-AUC
    "importance_std": "DOUBLE",
}

SEGMENTS_COLUMNS: dict[str, str] = {
    "segment_id": "VARCHAR",
    "kind": "VARCHAR",                  # rule | cluster
    "name": "VARCHAR",
    "description": "VARCHAR",
    "customers": "BIGINT",
    "mean_p_decline": "DOUBLE",
    "total_profit": "DOUBLE",
    "profile": "VARCHAR",               # JSON: feature -> segment mean vs overall mean
    "offer": "VARCHAR",                 # recommended personalised offer
}

# The cards of the models whose scores a warehouse holds: the dashboard reads the card (and
# through it the pickle) from here, so data, scores and model switch together with the file.
MODEL_CARDS_COLUMNS: dict[str, str] = {
    "subject": "VARCHAR",
    "card": "VARCHAR",                  # the model card, JSON, as in models/<subject>.json
}

TABLES: dict[str, dict[str, str]] = {
    SESSIONS: SESSIONS_COLUMNS,
    CUSTOMERS: CUSTOMERS_COLUMNS,
    REJECTED_ROWS: REJECTED_ROWS_COLUMNS,
    SOURCE_FILES: SOURCE_FILES_COLUMNS,
    ETL_RUNS: ETL_RUNS_COLUMNS,
    SESSION_SCORES: SESSION_SCORES_COLUMNS,
    CUSTOMER_SCORES: CUSTOMER_SCORES_COLUMNS,
    CUSTOMER_CONTRIBUTIONS: CUSTOMER_CONTRIBUTIONS_COLUMNS,
    FEATURE_IMPORTANCES: FEATURE_IMPORTANCES_COLUMNS,
    SEGMENTS: SEGMENTS_COLUMNS,
    MODEL_CARDS: MODEL_CARDS_COLUMNS,
}

# --- targets --------------------------------------------------------------------------

TARGETS = {"carts": "abandoned", "customers": "activity_declined"}
ID_COLUMNS = {"carts": "session_id", "customers": "customer_id"}
SUBJECT_TABLES = {"carts": SESSIONS, "customers": CUSTOMERS}

# --- human labels (English), one place for the whole UI -------------------------------

LABELS: dict[str, str] = {
    "session_id": "Session",
    "product_details_viewed": "Product details viewed",
    "session_activity_count": "Session activity (actions)",
    "items_added": "Items added to cart",
    "items_removed": "Items removed from cart",
    "cart_views": "Cart views",
    "checkout_initiated": "Checkouts initiated",
    "checkout_confirmed": "Checkouts confirmed",
    "cart_item_views": "Cart item views",
    "customer_logins": "Customer logins",
    "pages_viewed": "Pages viewed",
    "customer_segment": "Customer type",
    "abandoned": "Cart abandoned",
    "customer_id": "Customer",
    "activity_declined": "Activity declined",
    "service_tier": "Service tier",
    "marketing_consent": "Marketing consent",
    "marketing_6m": "Marketing contacts / month (6 m)",
    "marketing_this_month": "Marketing contacts this month",
    "tenure_days": "Days since registration",
    "promo_share": "Share of promo purchases",
    "top_category": "Top category",
    "categories_per_visit": "Categories viewed per visit",
    "unpaid_items_quarter": "Unpaid items in cart (quarter)",
    "service_errors": "Service errors",
    "pages_per_visit": "Pages per visit",
    "revenue_2m_ago": "Revenue two months ago",
    "revenue_last_month": "Revenue last month",
    "revenue_this_month": "Revenue this month",
    "minutes_last_month": "Minutes on site last month",
    "minutes_this_month": "Minutes on site this month",
    "profit": "Average monthly profit",
    "p_abandon": "P(abandon)",
    "p_decline": "P(decline)",
    "expected_profit_at_risk": "Profit at risk",
}

# outcome value -> label, used for legends (purchased/abandoned, same/declined)
OUTCOME_LABELS = {
    "carts": {False: "Purchased", True: "Abandoned"},
    "customers": {False: "Same level", True: "Declined"},
}

# Warehouse values for categorical columns, with the raw term they come from.
SERVICE_TIERS = {"premium": "премиум", "standard": "стандарт"}
CATEGORIES = {
    "Kids' goods": "Товары для детей",
    "Home textiles": "Домашний текстиль",
    "Cosmetics and accessories": "Косметика и аксесуары",
    "Beauty and health devices": "Техника для красоты и здоровья",
    "Small appliances and electronics": "Мелкая бытовая техника и электроника",
    "Kitchenware": "Кухонная посуда",
}
CUSTOMER_SEGMENT_TYPES = (0, 1, 2)  # published without labels; shown as "Type 0/1/2"


def label(column: str) -> str:
    """Human label for a column; falls back to a readable version of the name."""
    return LABELS.get(column, column.replace("_", " ").capitalize())
