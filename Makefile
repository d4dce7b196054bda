# Shopper Insights — the two commands: `make run` and `make test`.
# Everything is configured through environment variables (see etl/settings.py, README).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8050
# gunicorn's rule of thumb: 2 x cores + 1 synchronous workers (gunicorn.conf.py explains the
# other server settings and reads HOST, PORT, WORKERS and LOG_LEVEL from the environment).
WORKERS ?= $(shell echo $$(( $$(nproc) * 2 + 1 )))
ROWS      ?= 1000000
BACKEND   ?= duckdb
BENCH_OUT ?= benchmarks/results/bench-$(if $(filter-out duckdb,$(BACKEND)),$(BACKEND)-)$(ROWS).json
export HOST PORT

CHARTS := assets/plotly-charts.min.js

.PHONY: run prepare test test-fast browser-deps server-deps bench loadtest first-load clean help

help:
	@echo "make run        set up, prepare data and models, serve on http://$(HOST):$(PORT)"
	@echo "make test       set up and run the whole test suite (incl. browser tests)"
	@echo "make test-fast  the suite without browser tests and real servers (PostgreSQL, Spark, Redis, nginx)"
	@echo "make bench ROWS=N BACKEND=duckdb|postgres|spark BENCH_OUT=path.json   benchmark at N sessions"
	@echo "make loadtest   load test with gunicorn on loopback (steady, novel, worker killed, data refreshed)"
	@echo "make first-load bytes a first visit to /carts transfers, compressed and not (headless chromium)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install when the pinned requirements change.
$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.spark: requirements-spark.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-spark.txt
	touch $@ $(VENV)/.runtime

$(VENV)/.dev: requirements-dev.txt requirements-spark.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime $(VENV)/.spark

# Plotly.js with only the trace types the dashboard draws (plotly_bundle/entry.js): 0.35 MB on a
# first visit instead of the full bundle's 1.1 MB. Built with the machine's Node.js from the npm
# registry (Debian's nodejs and npm when there is none); versions pinned by package-lock.json.
$(CHARTS): plotly_bundle/package.json plotly_bundle/package-lock.json plotly_bundle/entry.js plotly_bundle/build.js
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing Debian's nodejs and npm to build the charts' plotly.js"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] < 18 ? 1 : 0)' || { \
	  echo "Node.js $$(node --version) is too old to build the charts' plotly.js: esbuild needs 18 or newer"; exit 1; }
	cd plotly_bundle && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error && node build.js ../$@

# Sample data when no raw data is configured, ETL when the warehouse is older than the raw
# files, training when the models were trained on another data version.
# A Spark warehouse also needs pyspark (400 MB, so only then).
prepare: $(VENV)/.runtime $(if $(filter pyspark://%,$(WAREHOUSE_URL)),$(VENV)/.spark)
	$(BIN)/python -m etl prepare

# The report scheduler (python -m dashboard schedule) runs beside gunicorn and stops with it.
run: prepare $(CHARTS)
	$(BIN)/python -m dashboard schedule --check
	@$(BIN)/python -m dashboard schedule & scheduler=$$!; \
	trap 'kill -TERM $$scheduler 2>/dev/null; wait $$scheduler' EXIT INT TERM; \
	WORKERS=$(WORKERS) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:server

# Debian's chromium for the browser tests (no browser download is possible offline).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL, Redis, nginx and OpenJDK (for Spark) for the tests that start real
# servers on loopback (localservers/); only what is missing is installed.
# The tests start their own instances on loopback, so the system services the packages start
# on a systemd machine (nginx on port 80, PostgreSQL, Redis) are stopped and disabled again,
# only for the packages installed here.
SERVER_PACKAGES := postgresql:pg_ctlcluster:postgresql redis-server:redis-server:redis-server \
                   nginx-light:nginx:nginx openjdk-17-jre-headless:java:
server-deps:
	@missing=""; services=""; for triple in $(SERVER_PACKAGES); do \
	  package=$${triple%%:*}; rest=$${triple#*:}; binary=$${rest%%:*}; service=$${rest#*:}; \
	  command -v $$binary >/dev/null 2>&1 || [ -x /usr/sbin/$$binary ] || { \
	    missing="$$missing $$package"; services="$$services $$service"; }; done; \
	[ -z "$$missing" ] || { \
	  echo "installing Debian's$$missing for the server tests"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	  for service in $$services; do \
	    $$SUDO systemctl disable --now $$service >/dev/null 2>&1 || true; done; }

test: $(VENV)/.dev $(CHARTS) browser-deps server-deps
	$(BIN)/python -m pytest

test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -m "not browser and not servers"

bench: $(VENV)/.dev $(if $(filter-out duckdb,$(BACKEND)),server-deps)
	$(BIN)/python -m benchmarks.bench --rows $(ROWS) --backend $(BACKEND) --out $(BENCH_OUT)

loadtest: $(VENV)/.dev $(CHARTS) server-deps
	$(BIN)/python -m benchmarks.loadtest $(LOADTEST_ARGS)

first-load: $(VENV)/.dev $(CHARTS) browser-deps
	$(BIN)/python -m benchmarks.first_load

clean:
	rm -rf $(VENV) .pytest_cache data/warehouse.duckdb data/cache $(CHARTS) plotly_bundle/node_modules
