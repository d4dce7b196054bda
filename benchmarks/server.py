"""gunicorn for the load tests, started exactly as ``make run`` starts it.

``gunicorn -c gunicorn.conf.py wsgi:server`` with ``HOST``/``PORT``/``WORKERS`` in the
environment (the settings file reads them), on a free loopback port, stdout and stderr (the
access and error logs) into a file; plus the two HTTP helpers the load tests need.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from benchmarks import workload
from localservers import free_port

VENV_BIN = Path(sys.executable).parent
CONFIG = workload.PROJECT_ROOT / "gunicorn.conf.py"


class Gunicorn:
    def __init__(self, workers: int, env: dict, log_path: Path):
        self.workers, self.port = workers, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [str(VENV_BIN / "gunicorn"), "-c", str(CONFIG), "wsgi:server"]
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=workload.PROJECT_ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(self.port),
                                          "WORKERS": str(workers)})
        self.master = psutil.Process(self.proc.pid)

    def worker_pids(self) -> list[int]:
        try:
            return [c.pid for c in self.master.children() if c.is_running()]
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        """CPU of the master and its workers, including workers that have exited: gunicorn
        recycles a worker after ``max_requests`` (5,000), and at hundreds of requests/s that
        happens during a run; the master reaps it, so its CPU is in the master's
        ``children_*`` times (without them a run's CPU per request was undercounted)."""
        total = 0.0
        for proc in [self.master, *self.master.children(recursive=True)]:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
                if proc is self.master:
                    total += t.children_user + t.children_system
            except psutil.Error:
                pass
        return total

    def worker_rss_mb(self) -> list[float]:
        out = []
        for proc in self.master.children():
            try:
                out.append(round(proc.memory_info().rss / 2**20))
            except psutil.Error:
                pass
        return out

    def wait_ready(self, payloads: list[dict], timeout: float = 180) -> float:
        """Until all workers run and every payload answers 200 a few times over."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log.name}")
            if len(self.worker_pids()) == self.workers and get(self.url + "/_dash-layout") == 200:
                break
            time.sleep(0.5)
        else:
            raise TimeoutError("gunicorn did not start")
        # warm every worker: each builds its app, cube and models on first use
        for _ in range(2 * self.workers):
            for p in payloads:
                status, _ = post(self.url + p["path"], p["body"])
                if status != 200:
                    raise RuntimeError(f"{p['name']} answered HTTP {status} from gunicorn")
        return time.perf_counter() - started

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except Exception:  # noqa: BLE001
        return 0


def post(url: str, body: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
