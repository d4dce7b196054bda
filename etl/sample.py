"""Synthetic raw data in exactly the layout of the published files (see ../shared/data/README.md).

Used when the real files are absent (tests, demos) and to load-test the ETL at any size.
Every file is written as the publisher wrote it: same headers, separators, line endings,
number formats and quirks (the ``No_Checkout_Initiated `` header with a trailing space, blank
counts, the ``стандартт`` / ``предыдцщий_месяц`` / ``аксесуары`` spellings, ``money.csv`` with
``;`` and decimal commas, customers without revenue, one revenue outlier).

What is modelled: the target is drawn first (85.6 % abandoned carts, 38.3 % declined
customers) and every feature from a distribution conditional on it, so models trained on the
sample learn what they learn on the real data. 5-fold ROC-AUC, logistic regression / gradient
boosting: carts without the leaking ``No_Checkout_Confirmed`` ~0.85 / ~0.90 (real 0.84 / 0.88),
customers ~0.92 / ~0.94 (real 0.90 / 0.91; the real classes overlap a little more).

* Carts: class -> customer segment -> each count as a hurdle negative binomial (0 with
  probability p0, else 1 + NB(mean, shape)) per class and segment. Segment drives items
  added/removed, as in the real file; segment-0 sessions often add nothing, which is why
  ~20 % of purchased sessions have 0 items added (the impossible rows the ETL quarantines).
  The activity count is the sum of the other actions plus/minus hurdle noise, as in the file.
* Customers: class -> features from per-class distributions (category counts for the small
  integer scales, clipped normals or betas for the rest). Declined customers share one
  latent factor ("how much they declined"), which gives them the within-class correlations of
  the real file (pages, minutes, revenue two months ago move together) and makes some look like
  customers who kept their level, so the classes overlap almost as much as they really do.

All constants were fitted once on the real files (class shares, per-class/segment means,
variances, zero shares and category counts); nothing is read from them at run time.
"""
from __future__ import annotations

import numbers
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

# rows generated and written at a time: bounds memory (~0.5 GB) at any size
CHUNK_ROWS = {"carts": 1_000_000, "customers": 250_000}
FIRST_CUSTOMER_ID = 215348
_CSV = dict(quoting_style="none", quoting_header="none")

# ---- carts: class 0 = purchased, 1 = abandoned (Cart_Abandoned) ----------------------------
CART_COLUMNS = ("ID", "Is_Product_Details_viewed", "Session_Activity_Count", "No_Items_Added_InCart",
                "No_Items_Removed_FromCart", "No_Cart_Viewed", "No_Checkout_Confirmed",
                "No_Checkout_Initiated ", "No_Cart_Items_Viewed", "No_Customer_Login",
                "No_Page_Viewed", "Customer_Segment_Type", "Cart_Abandoned")
ABANDON_RATE = 3668 / 4284
SEGMENT_P = ((.451, .381, .168), (.580, .303, .117))  # P(segment 0, 1, 2 | class)
_SEGMENT_CDF = np.cumsum(SEGMENT_P, axis=1)
BLANK_RATE = 9 / 4284  # blank cells in each of No_Items_Added_InCart and No_Cart_Viewed
# (p0, mean, shape) of each count per class and segment: p0 = share of zeros; mean and
# variance of (value - 1) among non-zeros give shape = mean² / (var - mean); 100 where the
# non-zeros are not over-dispersed (≈ Poisson). "activity_extra"/"_missing" are the positive and
# negative parts of Session_Activity_Count minus the sum of the other actions.
_CART_COUNTS = {
    "Is_Product_Details_viewed": (
        ((.928, 0, 100), (.889, 0, 100), (.951, 0, 100)),        # purchased, segment 0, 1, 2
        ((.723, 0, 100), (.682, 0, 100), (.499, 0, 100))),       # abandoned, segment 0, 1, 2
    "No_Items_Added_InCart": (
        ((.453, .43, 100), (0, 5.37, 2.36), (0, 6.20, 2.03)),
        ((.376, .27, 100), (0, 5.57, .44), (.002, 7.25, .37))),
    "No_Items_Removed_FromCart": (
        ((.953, .23, 100), (.830, 0, 100), (0, 5.28, .55)),
        ((.936, .23, .98), (.881, 0, 100), (0, 5.29, .86))),
    "No_Cart_Viewed": (
        ((.356, 1.18, .42), (.321, 1.65, .28), (.184, 2.30, .77)),
        ((.350, .69, .37), (.305, 1.12, .33), (.244, 2.44, .73))),
    "No_Checkout_Confirmed": (
        ((.007, .22, .11), (0, .16, .06), (0, .13, .09)),
        ((.986, .07, 100), (.974, .03, 100), (.968, 0, 100))),
    "No_Checkout_Initiated ": (
        ((.014, .92, .61), (.013, .69, .85), (0, .68, .54)),
        ((.393, .39, .37), (.404, .42, .32), (.543, .86, .56))),
    "No_Cart_Items_Viewed": (
        ((.288, 2.69, .16), (.162, 2.63, .27), (.155, 1.24, 1.24)),
        ((.336, 1.90, .06), (.081, 2.13, .12), (.160, 1.51, 1.00))),
    "No_Customer_Login": (
        ((.673, .03, 100), (.451, .02, 100), (.223, .04, 100)),
        ((.921, .10, 4.35), (.881, .05, 100), (.807, .11, 100))),
    "No_Page_Viewed": (
        ((.248, 1.66, .87), (.247, 2.12, 1.03), (.058, 3.41, 1.13)),
        ((.262, 1.50, .66), (.169, 1.97, .54), (.074, 3.68, .89))),
    "activity_extra": (
        ((.475, 4.91, .34), (.336, 4.86, .14), (.379, 3.61, .13)),
        ((.657, 4.64, .13), (.545, 2.56, .26), (.420, 2.87, .34))),
    "activity_missing": (
        ((.957, 1.83, .19), (.962, 2.00, .29), (.961, 8.25, .82)),
        ((.873, .49, .05), (.873, 1.77, .08), (.833, 2.74, .09))),
}
# name -> (p0, mean, shape), each an array indexed by class * 3 + segment
_CART_PARAMS = {name: np.array(cells, dtype=float).reshape(6, 3).T
                for name, cells in _CART_COUNTS.items()}

# ---- customers: class 0 = "Прежний уровень" (kept level), 1 = "Снизилась" (declined) --------
MARKET_FILE_COLUMNS = ("id", "Покупательская активность", "Тип сервиса", "Разрешить сообщать",
                       "Маркет_актив_6_мес", "Маркет_актив_тек_мес", "Длительность", "Акционные_покупки",
                       "Популярная_категория", "Средний_просмотр_категорий_за_визит",
                       "Неоплаченные_продукты_штук_квартал", "Ошибка_сервиса", "Страниц_за_визит")
ACTIVITY_LABELS = ("Прежний уровень", "Снизилась")
DECLINE_RATE = 498 / 1300
PREMIUM_P = (206 / 802, 170 / 498)
TYPO_RATE = 10 / 924           # "стандартт" among standard-tier labels
CONSENT_P = 962 / 1300         # "да": the same in both classes
INACTIVE_RATE = 3 / 498        # declined customers with no revenue in the two earlier months
PERIODS = ("препредыдущий_месяц", "предыдущий_месяц", "текущий_месяц")
TIME_PERIODS = ("предыдцщий_месяц", "текущий_месяц")  # sic: the file's spelling
CATEGORIES = ("Домашний текстиль", "Косметика и аксесуары", "Кухонная посуда",
              "Мелкая бытовая техника и электроника", "Техника для красоты и здоровья", "Товары для детей")
# Real counts per class (kept level, declined) for categorical and small integer columns:
# (first value, counts for first value, first value + 1, ...).
_COUNTS = {
    "Популярная_категория": (0, ((149, 118, 72, 147, 132, 184), (102, 105, 66, 27, 52, 146))),
    "Маркет_актив_тек_мес": (3, ((186, 421, 195), (122, 248, 128))),
    "Средний_просмотр_категорий_за_визит": (1, ((22, 136, 222, 200, 152, 70),
                                                (84, 176, 134, 63, 25, 16))),
    "Неоплаченные_продукты_штук_квартал": (0, ((87, 200, 178, 145, 122, 64, 3, 2, 1, 0, 0),
                                               (29, 61, 83, 73, 75, 71, 41, 32, 19, 10, 4))),
    "Ошибка_сервиса": (0, ((17, 42, 93, 120, 163, 143, 113, 56, 43, 12),
                           (0, 32, 96, 106, 94, 65, 43, 36, 23, 3))),
    "Страниц_за_визит": (1, ((0, 0, 8, 33, 35, 66, 65, 98, 93, 90, 76, 63, 53, 48, 31, 17, 13, 6, 5, 2),
                             (20, 58, 68, 79, 80, 61, 37, 11, 15, 14, 16, 10, 8, 5, 5, 4, 6, 1, 0, 0))),
}
# (mean, sd) per class, then clip range and rounding step, for the continuous-ish columns.
_NORMALS = {
    "Маркет_актив_6_мес": (((4.57, .85), (3.74, 1.05)), (.9, 6.6), .1),
    "promo_high": (((.949, .024), (.941, .041)), (.74, .99), .01),
    "rev_0": (((4933, 320), (4678, 291)), (4098, 5663), 1),      # препредыдущий_месяц
    "rev_1": (((4933, 625), (4972, 809)), (2890, 6870), .5),     # предыдущий_месяц
    "rev_2": (((5198, 793), (5304, 895)), (2758, 7800), .1),     # текущий_месяц
    "min_0": (((15.03, 3.35), (10.95, 3.47)), (5, 23), 1),       # предыдцщий_месяц
    "min_1": (((14.60, 4.06), (10.95, 3.42)), (4, 23), 1),       # текущий_месяц
    "profit": (((4.0, 1.01), (4.0, 1.01)), (.86, 7.43), .01),
}
PROMO_HIGH_P = (.041, .269)    # promo share is bimodal: a minority buys almost only on promotion
PROMO_LOW_BETA = ((1.2, 2.48), (1.61, 1.36))  # the others: 0.11 + 0.3 * Beta(a, b), no pile-up at 0.11
DURATION_BETA = ((1.29, 1.32), (1.61, 1.46))  # days since registration ~ 110 + 970 * Beta(a, b)
# Loadings of declined customers' columns on their latent factor: a one-factor fit on the
# declined rows of the real files, the last four raised to match their pairwise correlations
# there (e.g. unpaid items vs categories -0.31). Kept-level customers' columns are independent.
_LOADINGS = {"Страниц_за_визит": .71, "min_0": .71, "min_1": .58, "rev_0": .58,
             "Маркет_актив_6_мес": .39, "Средний_просмотр_категорий_за_визит": .35,
             "Ошибка_сервиса": .2, "Неоплаченные_продукты_штук_квартал": -.4, "promo": -.35}
REVENUE_CORR = (.35, .85)      # revenue correlation: 2 months ago -> last month -> this month


def write_sample(out_dir: Path, sessions: int = 5000, customers: int = 1300, seed: int = 42,
                 progress: Callable[[str, int, int], None] | None = None) -> dict[str, Path]:
    """Write raw sample files under out_dir; returns {"carts": path, "market_file": path, ...}."""
    for name, value in (("sessions", sessions), ("customers", customers)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    out_dir = Path(out_dir)
    carts_seq, customers_seq = np.random.SeedSequence(seed).spawn(2)
    paths = {"carts": out_dir / "carts" / "data_cart_abandonment.csv"}
    paths.update({name: out_dir / "customers" / f"{name}.csv"
                  for name in ("market_file", "market_money", "market_time", "money")})
    temps = {key: path.with_name(path.name + ".tmp") for key, path in paths.items()}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_chunks(temps, ["carts"], sessions, carts_seq, _cart_chunk, "carts", progress)
        outlier_seq, chunks_seq = customers_seq.spawn(2)
        outlier = np.random.default_rng(outlier_seq).integers(customers) if customers >= 1000 else -1
        _write_chunks(temps, ["market_file", "market_money", "market_time", "money"], customers,
                      chunks_seq, lambda rng, start, n: _customer_chunk(rng, start, n, outlier),
                      "customers", progress)
    except BaseException:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
        raise
    for key, path in paths.items():
        os.replace(temps[key], path)
    return paths


def _write_chunks(temps, keys, total, seq, make_chunk, step, progress) -> None:
    """Generate `total` rows chunk by chunk, each chunk giving one table per file in `keys`."""
    options = {"market_file": pcsv.WriteOptions(eol="\r\n", **_CSV),
               "money": pcsv.WriteOptions(delimiter=";", **_CSV)}
    writers = {}
    size = CHUNK_ROWS[step]
    try:
        for start, chunk_seq in zip(range(0, total, size), seq.spawn(-(-total // size))):
            n = min(size, total - start)
            for key, table in zip(keys, make_chunk(np.random.default_rng(chunk_seq), start, n)):
                if key not in writers:
                    write_options = options.get(key, pcsv.WriteOptions(**_CSV))
                    writers[key] = pcsv.CSVWriter(temps[key], table.schema, write_options=write_options)
                writers[key].write_table(table)
            if progress is not None:
                progress(step, start + n, total)
    finally:
        for writer in writers.values():
            writer.close()


def _cart_chunk(rng: np.random.Generator, start: int, n: int) -> list[pa.Table]:
    abandoned = (rng.random(n) < ABANDON_RATE).astype(np.intp)
    u = rng.random(n)
    segment = (u >= _SEGMENT_CDF[abandoned, 0]).astype(np.intp) + (u >= _SEGMENT_CDF[abandoned, 1])
    cell = abandoned * 3 + segment
    counts = {name: _hurdle_nb(rng, *(p[cell] for p in params)) for name, params in _CART_PARAMS.items()}
    extra, missing = counts.pop("activity_extra"), counts.pop("activity_missing")
    counts["Session_Activity_Count"] = np.maximum(sum(counts.values()) + extra - missing, 0)
    columns = {
        "ID": pc.binary_join_element_wise("Session_ID_", pc.cast(pa.array(np.arange(start, start + n)),
                                                                 pa.string()), ""),
        "Is_Product_Details_viewed": pa.array(["No", "Yes"]).take(pa.array(counts.pop(CART_COLUMNS[1]))),
        **{name: pa.array(counts[name]) for name in CART_COLUMNS[2:11]},
        "Customer_Segment_Type": pa.array(segment),
        "Cart_Abandoned": pa.array(abandoned),
    }
    for name in ("No_Items_Added_InCart", "No_Cart_Viewed"):  # blanks, as in the real file
        columns[name] = pa.array(counts[name], mask=rng.random(n) < BLANK_RATE)
    return [pa.table([columns[name] for name in CART_COLUMNS], names=list(CART_COLUMNS))]


def _hurdle_nb(rng, p0, mean, shape) -> np.ndarray:
    """0 with probability p0, else 1 + negative binomial (a Poisson with gamma-distributed rate)."""
    rate = rng.gamma(shape, mean / shape)
    return np.where(rng.random(len(p0)) < p0, 0, 1 + rng.poisson(rate))


def _customer_chunk(rng: np.random.Generator, start: int, n: int, outlier: int) -> list[pa.Table]:
    declined = (rng.random(n) < DECLINE_RATE).astype(np.intp)
    factor = rng.standard_normal(n)

    def z(column):  # standard normal score, tied to the latent factor for declined customers
        loading = _LOADINGS.get(column, 0.0) * declined
        return loading * factor + np.sqrt(1 - loading ** 2) * rng.standard_normal(n)

    def normal(name, score=None):
        (params, (low, high), step) = _NORMALS[name]
        mean, sd = np.array(params).T
        value = mean[declined] + sd[declined] * (z(name) if score is None else score)
        # second rounding drops float noise, so 3.4 is written "3.4", not "3.4000000000000004"
        return np.round(np.round(np.clip(value, low, high) / step) * step, 6)

    def from_counts(column):  # inverse-CDF draw of the real per-class counts
        first, counts = _COUNTS[column]
        p = _normal_cdf(z(column))
        drawn = [np.searchsorted(np.cumsum(c) / np.sum(c), p, side="right") for c in counts]
        return first + np.minimum(np.where(declined == 1, drawn[1], drawn[0]), len(counts[0]) - 1)

    ids = FIRST_CUSTOMER_ID + np.arange(start, start + n)
    inactive = (declined == 1) & (rng.random(n) < INACTIVE_RATE)
    high_promo = _normal_cdf(z("promo")) > 1 - np.take(PROMO_HIGH_P, declined)
    low_promo = np.round(.11 + .3 * rng.beta(*np.array(PROMO_LOW_BETA)[declined].T), 2)
    promo = np.where(high_promo, normal("promo_high"), low_promo)
    duration = 110 + np.rint(970 * rng.beta(*np.array(DURATION_BETA)[declined].T)).astype(np.int64)
    standard = rng.random(n) >= np.take(PREMIUM_P, declined)
    tier = np.where(standard, 1 + (rng.random(n) < TYPO_RATE), 0)
    market = pa.table({
        "id": ids,
        MARKET_FILE_COLUMNS[1]: _labels(ACTIVITY_LABELS, declined),
        MARKET_FILE_COLUMNS[2]: _labels(("премиум", "стандарт", "стандартт"), tier),
        MARKET_FILE_COLUMNS[3]: _labels(("нет", "да"), rng.random(n) < CONSENT_P),
        "Маркет_актив_6_мес": normal("Маркет_актив_6_мес"),
        "Маркет_актив_тек_мес": from_counts("Маркет_актив_тек_мес"),
        # the few inactive customers are new ones who bought nothing on promotion yet
        "Длительность": np.where(inactive, 110 + rng.integers(0, 50, n), duration),
        "Акционные_покупки": np.where(inactive, 0.0, promo),
        "Популярная_категория": _labels(CATEGORIES, from_counts("Популярная_категория")),
        **{name: from_counts(name) for name in MARKET_FILE_COLUMNS[9:]},
    })

    r_prev, r_now = REVENUE_CORR
    z0 = z("rev_0")
    z1 = r_prev * z0 + np.sqrt(1 - r_prev ** 2) * rng.standard_normal(n)
    z2 = r_now * z1 + np.sqrt(1 - r_now ** 2) * rng.standard_normal(n)
    revenue = np.stack([normal("rev_0", z0), normal("rev_1", z1), normal("rev_2", z2)], axis=1)
    revenue[inactive, :2] = 0.0
    if 0 <= outlier - start < n:  # one broken-looking current month, like the real 106,862.2
        revenue[outlier - start, 2] = np.round(rng.uniform(95_000, 110_000), 1)
    minutes = np.stack([normal("min_0"), normal("min_1")], axis=1).astype(np.int64)
    profit = pc.replace_substring(pc.cast(pa.array(normal("profit")), pa.string()), ".", ",")
    return [
        market,
        _long(ids, PERIODS, revenue, "Выручка", _one_decimal, rng),
        _long(ids, TIME_PERIODS, minutes, "минут", pa.array, rng),
        pa.table({"id": ids, "Прибыль": profit}),
    ]


def _long(ids, periods, values, value_name, to_arrow, rng) -> pa.Table:
    """One row per customer and period, periods in random order per customer as in the files."""
    order = np.argsort(rng.random(values.shape), axis=1)
    return pa.table({"id": np.repeat(ids, len(periods)),
                     "Период": _labels(periods, order.ravel()),
                     value_name: to_arrow(np.take_along_axis(values, order, axis=1).ravel())})


def _normal_cdf(score: np.ndarray) -> np.ndarray:
    """Logistic approximation of the standard normal CDF (error < 0.01): enough for sampling."""
    return 1 / (1 + np.exp(-1.702 * score))


def _labels(labels, index) -> pa.Array:
    return pa.array(labels).take(pa.array(np.asarray(index, dtype=np.int64)))


def _one_decimal(values: np.ndarray) -> pa.Array:
    """Always one decimal, as market_money.csv writes them: 4472 -> "4472.0"."""
    tenths = np.rint(values * 10).astype(np.int64)
    return pc.binary_join_element_wise(pc.cast(pa.array(tenths // 10), pa.string()),
                                       pc.cast(pa.array(tenths % 10), pa.string()), ".")
