"""All paths and knobs, read from environment variables at call time.

Nothing here is evaluated at import time, so tests (and the dashboard) can change the
environment and call :func:`get_settings` again.

| variable          | default                  | meaning                                   |
|-------------------|--------------------------|-------------------------------------------|
| ``RAW_DIR``       | ``data/raw``             | folder with ``carts/`` and ``customers/`` |
| ``WAREHOUSE_URL`` | ``data/warehouse.duckdb`` | ``duckdb:///abs/path``, a plain path, or another Ibis URL |
| ``MODELS_DIR``    | ``models``               | pickles and model cards                   |
| ``HOST``/``PORT`` | ``127.0.0.1``/``8050``   | where gunicorn binds                      |
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    raw_dir: Path
    warehouse_url: str
    models_dir: Path
    host: str
    port: int


def _project_path(value: str) -> Path:
    """Relative paths are relative to the project, not to whatever the cwd happens to be."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def get_settings() -> Settings:
    port = os.environ.get("PORT", "8050")
    # ASCII digits only: "²".isdigit() is true and int("²") fails
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise ValueError(f"PORT must be a TCP port number (1-65535), got {port!r}")
    return Settings(
        raw_dir=_project_path(os.environ.get("RAW_DIR", "data/raw")),
        warehouse_url=os.environ.get("WAREHOUSE_URL", "data/warehouse.duckdb"),
        models_dir=_project_path(os.environ.get("MODELS_DIR", "models")),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(port),
    )
