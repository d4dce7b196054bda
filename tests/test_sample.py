"""The sample generator writes files laid out exactly like the published ones, with their quirks."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from etl.sample import CART_COLUMNS, MARKET_FILE_COLUMNS, write_sample

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {"carts": "carts/data_cart_abandonment.csv", "market_file": "customers/market_file.csv",
         "market_money": "customers/market_money.csv", "market_time": "customers/market_time.csv",
         "money": "customers/money.csv"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    write_sample(out, sessions=5000, customers=1300, seed=42)
    return out


def _carts(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / FILES["carts"])


def _first_line(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.readline()


def test_returns_every_file_under_out_dir(tmp_path):
    paths = write_sample(tmp_path, sessions=10, customers=10)
    assert paths == {key: tmp_path / rel for key, rel in FILES.items()}
    assert all(path.is_file() for path in paths.values())
    assert not list(tmp_path.rglob("*.tmp"))


def test_headers_are_exactly_the_published_ones(sample):
    assert _first_line(sample / FILES["carts"]).decode() == ",".join(CART_COLUMNS) + "\n"
    assert "No_Checkout_Initiated " in CART_COLUMNS  # trailing space, as published
    assert _first_line(sample / FILES["market_file"]).decode() == ",".join(MARKET_FILE_COLUMNS) + "\r\n"
    assert _first_line(sample / FILES["market_money"]).decode() == "id,Период,Выручка\n"
    assert _first_line(sample / FILES["market_time"]).decode() == "id,Период,минут\n"
    assert _first_line(sample / FILES["money"]).decode() == "id;Прибыль\n"


def test_headers_match_the_real_files(sample):
    if not REAL_DATA.is_dir():
        pytest.skip("../shared/data is not beside the project")
    for rel in FILES.values():
        assert _first_line(sample / rel) == _first_line(REAL_DATA / rel), rel


def test_money_uses_semicolons_and_decimal_commas(sample):
    lines = (sample / FILES["money"]).read_text(encoding="utf-8").splitlines()[1:]
    assert all(line.count(";") == 1 and "." not in line for line in lines)
    assert sum("," in line for line in lines) > 0.9 * len(lines)
    money = pd.read_csv(sample / FILES["money"], sep=";", decimal=",")
    assert money["Прибыль"].dtype.kind == "f" and money["Прибыль"].between(0, 10).all()
    assert money["id"].min() == 215348 and money["id"].is_unique


def test_line_endings_crlf_only_in_market_file(sample):
    market = (sample / FILES["market_file"]).read_bytes()
    assert market.count(b"\n") == market.count(b"\r\n") == 1301
    for key in ("carts", "market_money", "market_time", "money"):
        assert b"\r" not in (sample / FILES[key]).read_bytes(), key


def test_rows_per_customer_and_period_labels(sample):
    market = pd.read_csv(sample / FILES["market_file"])
    money = pd.read_csv(sample / FILES["market_money"])
    time = pd.read_csv(sample / FILES["market_time"])
    assert market["id"].tolist() == list(range(215348, 215348 + 1300))
    assert money.groupby("id")["Период"].apply(sorted).map(tuple).unique().tolist() == [
        ("предыдущий_месяц", "препредыдущий_месяц", "текущий_месяц")]
    assert time.groupby("id")["Период"].apply(sorted).map(tuple).unique().tolist() == [
        ("предыдцщий_месяц", "текущий_месяц")]
    assert set(money["id"]) == set(time["id"]) == set(market["id"])


def test_carts_values_are_counts(sample):
    carts = _carts(sample)
    counts = carts.drop(columns=["ID", "Is_Product_Details_viewed"])
    assert (counts.fillna(0) >= 0).all().all()
    assert (counts.fillna(0) % 1 == 0).all().all()
    assert set(carts["Customer_Segment_Type"]) == {0, 1, 2}
    assert set(carts["Cart_Abandoned"]) == {0, 1}
    assert set(carts["Is_Product_Details_viewed"]) == {"Yes", "No"}
    assert carts["ID"].tolist()[:2] == ["Session_ID_0", "Session_ID_1"]


def test_carts_quirks_are_kept(sample):
    carts = _carts(sample)
    blanks = carts[["No_Items_Added_InCart", "No_Cart_Viewed"]].isna().sum()
    assert blanks.between(2, 30).all()  # ~9 per 4,284 rows each
    purchased = carts[carts["Cart_Abandoned"] == 0]
    zero_items = (purchased["No_Items_Added_InCart"] == 0).mean()
    assert 0.1 < zero_items < 0.3  # real: 126 of 616 purchased sessions added nothing
    assert (purchased["No_Checkout_Confirmed"] >= 1).mean() > 0.98
    abandoned = carts[carts["Cart_Abandoned"] == 1]
    assert (abandoned["No_Checkout_Confirmed"] == 0).mean() > 0.95


def test_customers_quirks_are_kept(sample):
    market = pd.read_csv(sample / FILES["market_file"])
    assert 3 <= (market["Тип сервиса"] == "стандартт").sum() <= 25  # ~0.8 %
    assert set(market["Тип сервиса"]) == {"премиум", "стандарт", "стандартт"}
    assert "Косметика и аксесуары" in set(market["Популярная_категория"])
    money = pd.read_csv(sample / FILES["market_money"])
    assert (money["Выручка"] == 0).any()
    assert (money["Выручка"] > 50_000).sum() == 1  # the outlier, as customers >= 1000
    assert money["Выручка"].astype(str).str.fullmatch(r"\d+\.\d").all()


def test_no_outlier_below_a_thousand_customers(tmp_path):
    write_sample(tmp_path, sessions=10, customers=999)
    money = pd.read_csv(tmp_path / FILES["market_money"])
    assert money["Выручка"].max() < 50_000


def test_class_balance_is_close_to_the_real_data(tmp_path):
    write_sample(tmp_path, sessions=20_000, customers=20_000, seed=3)
    assert _carts(tmp_path)["Cart_Abandoned"].mean() == pytest.approx(0.856, abs=0.015)
    market = pd.read_csv(tmp_path / FILES["market_file"])
    assert (market["Покупательская активность"] == "Снизилась").mean() == pytest.approx(0.383, abs=0.02)


def test_declined_customers_differ_like_in_the_real_data(sample):
    market = pd.read_csv(sample / FILES["market_file"])
    means = market.groupby("Покупательская активность").mean(numeric_only=True)
    declined, kept = means.loc["Снизилась"], means.loc["Прежний уровень"]
    assert declined["Акционные_покупки"] > kept["Акционные_покупки"]
    assert declined["Неоплаченные_продукты_штук_квартал"] > kept["Неоплаченные_продукты_штук_квартал"]
    assert declined["Страниц_за_визит"] < kept["Страниц_за_визит"]
    assert declined["Средний_просмотр_категорий_за_визит"] < kept["Средний_просмотр_категорий_за_визит"]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    runs = {name: write_sample(tmp_path / name, sessions=300, customers=50, seed=seed)
            for name, seed in (("a", 5), ("b", 5), ("c", 6))}
    for key in FILES:
        assert runs["a"][key].read_bytes() == runs["b"][key].read_bytes(), key
        assert runs["a"][key].read_bytes() != runs["c"][key].read_bytes(), key


@pytest.mark.parametrize("kwargs", [{"sessions": 0}, {"customers": 0}, {"sessions": -5},
                                    {"sessions": 2.5}, {"customers": True}])
def test_rejects_bad_sizes(tmp_path, kwargs):
    with pytest.raises(ValueError, match="sessions|customers"):
        write_sample(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_progress_reports_each_step(tmp_path):
    calls = []
    write_sample(tmp_path, sessions=100, customers=20, progress=lambda *args: calls.append(args))
    assert calls == [("carts", 100, 100), ("customers", 20, 20)]


def test_interrupted_run_leaves_no_file(tmp_path):
    def stop(step, done, total):
        if step == "customers":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_sample(tmp_path, sessions=100, customers=20, progress=stop)
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


@pytest.mark.slow
def test_sample_output_loads_through_etl(tmp_path):
    pipeline = pytest.importorskip("etl.pipeline")
    write_sample(tmp_path / "raw", sessions=2000, customers=1300, seed=11)
    summary = pipeline.run_pipeline(raw_dir=tmp_path / "raw", warehouse_url=str(tmp_path / "wh.duckdb"))
    assert summary["tables"]["sessions"] > 0
    assert summary["tables"]["customers"] > 0
