"""Shared fixtures: where the real data is, and small raw folders to break on purpose."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

AUTH_VARIABLES = ("AUTH", "AUTH_ALLOW_ANONYMOUS", "ANONYMOUS_ROLE", "SECRET_KEY", "SESSION_LIFETIME", "COOKIE_SECURE",
                  "LOGIN_MAX_FAILURES", "LOGIN_LOCKOUT", "AUTH_GROUPS", "AUTH_DEFAULT_ROLE", "AUTH_PROXY_ADDRESSES",
                  "AUTH_PROXY_USER_HEADER", "AUTH_PROXY_GROUPS_HEADER", "OIDC_ISSUER", "OIDC_CLIENT_ID",
                  "OIDC_CLIENT_SECRET", "HOST", "FORWARDED_ALLOW_IPS")
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def has_real_data() -> bool:
    return (REAL_DATA / "carts").is_dir() and (REAL_DATA / "customers").is_dir()


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not has_real_data():
        pytest.skip("../shared/data is not beside the project")
    return REAL_DATA


@pytest.fixture(scope="session")
def generated_raw(tmp_path_factory) -> Path:
    """A small generated raw folder (read-only by convention: copy it before breaking it)."""
    from etl.sample import write_sample

    out = tmp_path_factory.mktemp("generated") / "raw"
    write_sample(out, sessions=3000, customers=600, seed=7)
    return out


@pytest.fixture
def raw_copy(tmp_path, generated_raw) -> Path:
    """A private, valid raw folder a test may edit: the real data when present, else generated."""
    source = REAL_DATA if has_real_data() else generated_raw
    target = tmp_path / "raw"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("README.md"))
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # ../shared is read-only
    return target


# --- dashboard ---------------------------------------------------------------------------
# A warehouse built by the real ETL and models trained by the real `python -m etl train --fast`
# (small search grids, same code path), shared by the dashboard tests of a session.


@pytest.fixture(scope="session")
def dashboard_raw(request) -> Path:
    """The real data when present, else a small generated folder."""
    return REAL_DATA if has_real_data() else request.getfixturevalue("generated_raw")


@pytest.fixture(scope="session")
def dashboard_data(tmp_path_factory, dashboard_raw) -> dict:
    """Two warehouses from the real ETL: ``plain`` (no models) and ``scored`` (+ fast-trained models)."""
    from etl.cli import main
    from etl.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("dashboard")
    plain = str(root / "plain.duckdb")
    run_pipeline(dashboard_raw, plain)
    scored = str(root / "scored.duckdb")
    shutil.copyfile(plain, scored)
    assert main(["-q", "train", "--fast", "--warehouse", scored, "--models", str(root / "models")]) == 0
    return {"plain": plain, "scored": scored, "models": root / "models", "empty_models": root / "no-models"}


def loopback_admin_env(patch: pytest.MonkeyPatch, state: Path, warehouse: str, models: Path) -> None:
    """The environment of ``make run``'s loopback visitor (AUTH=none: an admin) on
    ``warehouse`` and ``models``, with cache and state in ``state`` and no raw data."""
    patch.setenv("WAREHOUSE_URL", warehouse)
    patch.setenv("MODELS_DIR", str(models))
    patch.setenv("CACHE_DIR", str(state / "cache"))
    patch.setenv("STATE_DIR", str(state))
    patch.setenv("RAW_DIR", str(state / "no-raw"))
    for name in (*AUTH_VARIABLES, "URL_PREFIX", "FRAME_ANCESTORS", "CACHE_REDIS_URL", "DEFAULT_LANG"):
        patch.delenv(name, raising=False)


@pytest.fixture
def dashboard_env(monkeypatch, tmp_path, dashboard_data) -> dict:
    """Point the dashboard at the scored warehouse and models; a private query cache."""
    monkeypatch.setenv("WAREHOUSE_URL", dashboard_data["scored"])
    monkeypatch.setenv("MODELS_DIR", str(dashboard_data["models"]))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("URL_PREFIX", raising=False)
    monkeypatch.delenv("FRAME_ANCESTORS", raising=False)
    monkeypatch.delenv("CACHE_REDIS_URL", raising=False)
    # open access on loopback (the `make run` default) with its key kept out of the project
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    # no raw data: a "Refresh data now" clicked by a test fails instead of replacing the shared warehouse
    monkeypatch.setenv("RAW_DIR", str(tmp_path / "no-raw"))
    for name in AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return dashboard_data
