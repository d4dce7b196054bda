"""Shared fixtures: where the real data is, and small raw folders to break on purpose."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
