"""Data for the benchmarks: generated raw files, the ETL run (timed, peak RSS), trained models.

Everything lives under ``benchmarks/.work/<key>/`` and is reused while the row count, the
customer count and the seed are the same (``--fresh`` throws it away), so a rerun only
repeats the measurements:

    raw/                 generated CSVs (``python -m etl sample``)
    warehouse.duckdb     built by ``python -m etl run`` (timed: wall time and peak RSS)
    models/              ``python -m etl train --fast`` (timed separately, never part of a result)
    meta.json            what was measured when the files were made

The ETL and training run as subprocesses through the project's own CLI, exactly as an
operator would run them. Peak RSS is the larger of (a) psutil polling of the process tree
every 20 ms and (b) the kernel's ``ru_maxrss`` for that child from ``wait4``.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WORK_DIR = PROJECT_ROOT / "benchmarks" / ".work"
RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
REAL_DATA = PROJECT_ROOT.parent / "shared" / "data"


def customers_for(rows: int) -> int:
    """Customers generated with ``rows`` sessions: the real files' 1,300 at their size, growing
    by one per 770 sessions beyond (13 k at 10 M). The real ratio (1,300 : 4,284) would mean
    3 M customers at 10 M sessions: a customer benchmark, which this is not."""
    return max(1300, rows // 770)


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float
    polled_rss_mb: float
    maxrss_mb: float
    returncode: int


def run_measured(argv: list[str], log_path: Path, env: dict | None = None, poll: float = 0.02) -> Measured:
    """Run ``argv`` to completion; wall time and peak memory of its process tree."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    peak = [0]
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
        done = threading.Event()

        def watch() -> None:
            try:
                root = psutil.Process(proc.pid)
            except psutil.Error:
                return
            while not done.is_set():
                try:
                    rss = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
                    peak[0] = max(peak[0], rss)
                except psutil.Error:
                    pass
                done.wait(poll)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, tell Popen
    maxrss = usage.ru_maxrss / 1024  # KiB on Linux
    return Measured(seconds, max(peak[0] / 2**20, maxrss), peak[0] / 2**20, maxrss, proc.returncode)


def _check(measured: Measured, what: str, log_path: Path) -> None:
    if measured.returncode != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{what} failed (exit {measured.returncode}); log {log_path}:\n{tail}")


@dataclass
class Workload:
    key: str
    folder: Path
    raw_dir: Path
    warehouse: Path
    models_dir: Path
    meta: dict

    @property
    def env(self) -> dict[str, str]:
        return {"WAREHOUSE_URL": str(self.warehouse), "MODELS_DIR": str(self.models_dir),
                "RAW_DIR": str(self.raw_dir)}


def _save(meta_path: Path, meta: dict) -> None:
    meta_path.write_text(json.dumps(meta, indent=1, default=str))


def prepare(rows: int | None, seed: int = 42, customers: int | None = None, work_dir: Path = WORK_DIR,
            raw_dir: Path | None = None, fresh: bool = False, rerun_etl: bool = False,
            models_dir: Path | None = None, train_subjects: list[str] | None = None,
            log=print) -> Workload:
    """Generated (``rows`` sessions) or given (``raw_dir``) raw data → warehouse → models."""
    py = sys.executable
    if raw_dir is None:
        customers = customers or customers_for(rows)
        key = f"rows-{rows}-cust-{customers}-seed-{seed}"
    else:
        key = "raw-" + "".join(c if c.isalnum() else "_" for c in str(Path(raw_dir).resolve()))[-60:]
    folder = Path(work_dir) / key
    if fresh and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}

    if raw_dir is None:
        raw = folder / "raw"
        if not (raw / ".complete").exists():
            shutil.rmtree(raw, ignore_errors=True)
            log(f"generating {rows:,} sessions and {customers:,} customers (seed {seed}) ...")
            measured = run_measured([py, "-m", "etl", "-q", "sample", "--out", str(raw), "--sessions", str(rows),
                                     "--customers", str(customers), "--seed", str(seed)], folder / "sample.log")
            _check(measured, "sample generation", folder / "sample.log")
            (raw / ".complete").touch()
            meta.update(rows_generated=rows, customers=customers, seed=seed,
                        sample_seconds=round(measured.seconds, 2))
            meta.pop("etl", None)  # new raw files: the warehouse must be rebuilt
            _save(meta_path, meta)
    else:
        raw = Path(raw_dir)
        meta.update(raw_dir=str(raw))

    warehouse = folder / "warehouse.duckdb"
    if "etl" not in meta or not warehouse.exists():
        log(f"ETL: python -m etl run --raw {raw} ...")
        meta["etl"] = _timed_etl(raw, warehouse, folder)
        shutil.rmtree(folder / "models", ignore_errors=True)  # a new warehouse needs new scores
        meta.pop("train", None)
        _save(meta_path, meta)
    elif rerun_etl:
        scratch = folder / "etl-rerun.duckdb"
        log("ETL (re-timed into a scratch warehouse, the benchmark's warehouse is kept) ...")
        meta["etl"] = _timed_etl(raw, scratch, folder)
        scratch.unlink(missing_ok=True)
        _save(meta_path, meta)

    if models_dir is None:
        from etl.prepare import stale_subjects, warehouse_version

        models_dir = folder / "models"
        if stale_subjects(warehouse, models_dir, warehouse_version(warehouse)):
            subjects = train_subjects or ["carts", "customers"]
            log(f"training ({', '.join(subjects)}, --fast; not part of any timing) ...")
            argv = [py, "-m", "etl", "-q", "train", "--fast", "--warehouse", str(warehouse),
                    "--models", str(models_dir)]
            for subject in subjects:
                argv += ["--subject", subject]
            measured = run_measured(argv, folder / "train.log")
            _check(measured, "training", folder / "train.log")
            meta["train"] = {"seconds": round(measured.seconds, 1), "peak_rss_mb": round(measured.peak_rss_mb),
                             "subjects": subjects, "fast": True}
            _save(meta_path, meta)
    else:
        _attach_cards(warehouse, Path(models_dir))
    return Workload(key, folder, raw, warehouse, Path(models_dir), meta)


def _attach_cards(warehouse: Path, models_dir: Path) -> None:
    """``--models DIR``: put the cards of those models into the benchmark's own warehouse, as
    training would (the dashboard takes a release's models from its warehouse). Their scores
    are not written: the benchmark times filter changes and the what-if, not the score pages."""
    import duckdb

    from etl.schema import MODEL_CARDS
    from etl.train.card import card_json, read_card

    rows = [(s, card_json(read_card(models_dir, s))) for s in ("carts", "customers")
            if (models_dir / f"{s}.json").exists()]
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"CREATE OR REPLACE TABLE {MODEL_CARDS} (subject VARCHAR, card VARCHAR)")
        con.executemany(f"INSERT INTO {MODEL_CARDS} VALUES (?, ?)", rows)


def _timed_etl(raw: Path, warehouse: Path, folder: Path) -> dict:
    log_path = folder / "etl.log"
    load = [round(x, 2) for x in os.getloadavg()]
    measured = run_measured([sys.executable, "-m", "etl", "run", "--raw", str(raw), "--warehouse", str(warehouse)],
                            log_path)
    _check(measured, "ETL", log_path)
    summary = next((line for line in log_path.read_text(errors="replace").splitlines()
                    if line.startswith("warehouse ")), "")
    return {"seconds": round(measured.seconds, 2), "peak_rss_mb": round(measured.peak_rss_mb, 1),
            "polled_rss_mb": round(measured.polled_rss_mb, 1), "ru_maxrss_mb": round(measured.maxrss_mb, 1),
            "summary": summary, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "loadavg_before": load}


# --- the warehouse on another backend -------------------------------------------------------

BACKENDS = ("duckdb", "postgres", "spark")


@dataclass
class Served:
    """Where the dashboard reads the benchmark's warehouse: ``url`` (WAREHOUSE_URL) and the
    publish / pull timings of that backend (none for the DuckDB file itself)."""
    backend: str
    url: str
    timings: dict = field(default_factory=dict)


@contextmanager
def served(name: str, warehouse: Path, log=print) -> Iterator[Served]:
    """The benchmark's DuckDB warehouse (ETL and training ran there, as they do on every
    backend) published to a throw-away ``name`` backend: a PostgreSQL server
    (localservers.postgres) or a Spark warehouse folder, stopped and removed at the end.
    Publish and pull are timed through the backend interface, as ``etl run`` and
    ``etl train`` use them."""
    if name == "duckdb":
        yield Served(name, str(warehouse))
        return
    with ExitStack() as stack:
        if name == "postgres":
            from localservers.postgres import postgres_server

            log("starting a throw-away PostgreSQL ...")
            url = stack.enter_context(postgres_server()).url
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="spark-", dir=warehouse.parent))
            url = f"pyspark://{Path(folder).resolve()}"
        from etl.backends import backend

        target = backend(url)
        stack.callback(target.close)
        build = target.build_path()
        try:
            shutil.copyfile(warehouse, build)        # a publish may consume its build (DuckDB renames it)
            log(f"publishing the warehouse to {name} ...")
            started = time.perf_counter()
            target.publish(build)
            publish_s = time.perf_counter() - started
        finally:
            build.unlink(missing_ok=True)
        pulled = target.build_path()
        try:
            log("pulling it back into a DuckDB file (what `etl train` starts from) ...")
            started = time.perf_counter()
            target.pull(pulled)
            pull_s = time.perf_counter() - started
        finally:
            pulled.unlink(missing_ok=True)
        yield Served(name, url, {"backend_publish_s": round(publish_s, 2), "backend_pull_s": round(pull_s, 2)})


class EngineSQL:
    """The backend's own SQL engine under an Ibis connection, Ibis itself out of the way (the
    floor for a query on that backend): ``execute(sql).fetchall()`` like a DuckDB connection."""

    def __init__(self, con) -> None:
        self.con, self._rows = con, []

    def execute(self, sql: str) -> EngineSQL:
        if self.con.name == "pyspark":
            self._rows = [tuple(row) for row in self.con._session.sql(sql).collect()]
        else:                                   # DuckDB and psycopg connections have execute()
            self._rows = self.con.con.execute(sql).fetchall()
        return self

    def fetchall(self) -> list[tuple]:
        return self._rows


@contextmanager
def engine_sql(url: str) -> Iterator[EngineSQL]:
    """:class:`EngineSQL` on the release published at ``url``, closed with its backend."""
    from etl.backends import backend

    target = backend(url)
    try:
        con = target.connect()
        try:
            yield EngineSQL(con)
        finally:
            con.disconnect()
    finally:
        target.close()


# --- reporting helpers --------------------------------------------------------------------


def stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "min": None, "max": None, "mean": None}
    arr = np.asarray(values, dtype=float)
    return {"n": len(arr), "p50": round(float(np.percentile(arr, 50)), 2),
            "p95": round(float(np.percentile(arr, 95)), 2), "p99": round(float(np.percentile(arr, 99)), 2),
            "min": round(float(arr.min()), 2), "max": round(float(arr.max()), 2),
            "mean": round(float(arr.mean()), 2)}


def git_commit() -> str | None:
    """HEAD's commit read from .git (no git command is run)."""
    git = PROJECT_ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).exists():
            return (git / ref).read_text().strip()
        packed = git / "packed-refs"
        if packed.exists():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
    except OSError:
        pass
    return None


def machine() -> dict:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    vm = psutil.virtual_memory()
    return {"cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)),
            "cpu_model": model or platform.processor(), "ram_gb": round(vm.total / 2**30, 1),
            "ram_available_gb_at_start": round(vm.available / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()], "git_commit": git_commit()}


def library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("dash", "plotly", "duckdb", "ibis-framework", "pandas", "numpy", "pyarrow", "scikit-learn",
                 "flask", "flask-caching", "gunicorn", "locust"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
