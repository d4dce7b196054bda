"""What each raw file must contain: columns, types, ranges and allowed labels.

This is the boundary contract for inputs. Raw headers and labels are kept exactly as the
publishers wrote them (Russian, English with odd spelling); each maps to an English
snake_case name from :mod:`etl.schema`. Known typos in the published files are listed as
extra labels of the value they mean, so they are normalised, not rejected.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from etl.schema import CATEGORIES, SERVICE_TIERS

INT, FLOAT, TEXT, LABEL = "int", "float", "text", "label"
_BIG = 10_000_000  # a count above this is a broken export, not a busy shopper


@dataclass(frozen=True)
class ColumnSpec:
    raw: str                          # header as published
    name: str                         # English snake_case name
    kind: str                         # int | float | text | label
    min: float | None = None
    max: float | None = None
    nullable: bool = False            # blanks allowed (cleaning fills them)
    labels: dict[str, object] = field(default_factory=dict)  # casefolded raw label -> value


@dataclass(frozen=True)
class FileSpec:
    subject: str
    pattern: str                      # glob relative to the raw folder
    columns: tuple[ColumnSpec, ...]
    many: bool = False                # several files may match (e.g. monthly exports)

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


def _count(raw: str, name: str, nullable: bool = False, max_: float = _BIG) -> ColumnSpec:
    return ColumnSpec(raw, name, INT, min=0, max=max_, nullable=nullable)


CARTS = FileSpec(
    subject="carts",
    pattern="carts/*.csv",
    many=True,
    columns=(
        ColumnSpec("ID", "session_id", TEXT),
        ColumnSpec("Is_Product_Details_viewed", "product_details_viewed", LABEL,
                   labels={"yes": True, "no": False}),
        _count("Session_Activity_Count", "session_activity_count"),
        _count("No_Items_Added_InCart", "items_added", nullable=True),
        _count("No_Items_Removed_FromCart", "items_removed"),
        _count("No_Cart_Viewed", "cart_views", nullable=True),
        _count("No_Checkout_Confirmed", "checkout_confirmed"),
        _count("No_Checkout_Initiated", "checkout_initiated"),
        _count("No_Cart_Items_Viewed", "cart_item_views"),
        _count("No_Customer_Login", "customer_logins"),
        _count("No_Page_Viewed", "pages_viewed"),
        ColumnSpec("Customer_Segment_Type", "customer_segment", INT, min=0, max=2),
        ColumnSpec("Cart_Abandoned", "abandoned", LABEL, labels={"1": True, "0": False}),
    ),
)

_tiers = {raw: eng for eng, raw in SERVICE_TIERS.items()}
_tiers["стандартт"] = "standard"  # typo in the published file (10 rows)

MARKET_FILE = FileSpec(
    subject="customers",
    pattern="customers/market_file.csv",
    columns=(
        ColumnSpec("id", "customer_id", INT, min=0, max=10**15),
        ColumnSpec("Покупательская активность", "activity_declined", LABEL,
                   labels={"снизилась": True, "прежний уровень": False}),
        ColumnSpec("Тип сервиса", "service_tier", LABEL, labels=_tiers),
        ColumnSpec("Разрешить сообщать", "marketing_consent", LABEL,
                   labels={"да": True, "нет": False}),
        ColumnSpec("Маркет_актив_6_мес", "marketing_6m", FLOAT, min=0, max=1000),
        _count("Маркет_актив_тек_мес", "marketing_this_month", max_=1000),
        _count("Длительность", "tenure_days", max_=36_500),
        ColumnSpec("Акционные_покупки", "promo_share", FLOAT, min=0, max=1),
        ColumnSpec("Популярная_категория", "top_category", LABEL,
                   labels={raw.casefold(): eng for eng, raw in CATEGORIES.items()}
                   | {"косметика и аксессуары": "Cosmetics and accessories"}),
        _count("Средний_просмотр_категорий_за_визит", "categories_per_visit", max_=1000),
        _count("Неоплаченные_продукты_штук_квартал", "unpaid_items_quarter", max_=100_000),
        _count("Ошибка_сервиса", "service_errors", max_=100_000),
        _count("Страниц_за_визит", "pages_per_visit", max_=100_000),
    ),
)

REVENUE_PERIODS = {
    "препредыдущий_месяц": "revenue_2m_ago",
    "предыдущий_месяц": "revenue_last_month",
    "текущий_месяц": "revenue_this_month",
}
MINUTES_PERIODS = {
    "предыдущий_месяц": "minutes_last_month",
    "предыдцщий_месяц": "minutes_last_month",  # typo in the published file (all rows)
    "текущий_месяц": "minutes_this_month",
}

MARKET_MONEY = FileSpec(
    subject="customers",
    pattern="customers/market_money.csv",
    columns=(
        ColumnSpec("id", "customer_id", INT, min=0, max=10**15),
        ColumnSpec("Период", "period", LABEL, labels=dict(REVENUE_PERIODS)),
        ColumnSpec("Выручка", "revenue", FLOAT, min=0, max=1e12),
    ),
)

MARKET_TIME = FileSpec(
    subject="customers",
    pattern="customers/market_time.csv",
    columns=(
        ColumnSpec("id", "customer_id", INT, min=0, max=10**15),
        ColumnSpec("Период", "period", LABEL, labels=dict(MINUTES_PERIODS)),
        _count("минут", "minutes", max_=44_640),  # minutes in a 31-day month
    ),
)

MONEY = FileSpec(
    subject="customers",
    pattern="customers/money.csv",
    columns=(
        ColumnSpec("id", "customer_id", INT, min=0, max=10**15),
        ColumnSpec("Прибыль", "profit", FLOAT, min=-1e12, max=1e12),
    ),
)

FILE_SPECS = (CARTS, MARKET_FILE, MARKET_MONEY, MARKET_TIME, MONEY)
