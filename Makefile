# Jarvis: `make run` starts the app, `make test` runs the whole suite.
# Each target bootstraps .venv itself; only Python 3.11+ and make are needed. Installs come
# from uv.lock (exact versions) through uv, which the bootstrap puts into .venv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
# uv installs into this project's .venv, never a global environment.
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON := $(abspath $(BIN)/python)

.PHONY: run test lint typecheck imports pytest bench lock clean help

help:
	@echo "make run    - bootstrap .venv, start embedded PostgreSQL (unless DATABASE_URL), migrate, start the app"
	@echo "make test   - bootstrap .venv with dev extras, run ruff, import contracts, mypy and pytest"
	@echo "make bench  - run the benchmarks in benchmarks/ (minutes; prints figures)"
	@echo "make lock   - re-resolve uv.lock after changing dependencies in pyproject.toml"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Jarvis needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5"

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --inexact --quiet --compile-bytecode
	@touch $@

$(VENV)/.installed-dev: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --inexact --quiet --compile-bytecode --extra dev
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/jarvis up

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check jarvis app.py app_pages tests benchmarks migrations
	$(BIN)/ruff format --check jarvis app.py app_pages tests benchmarks migrations

imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Two workers (pytest-xdist), each with its own embedded PostgreSQL: the suite waits on browsers
# and servers as much as it computes (one worker kept ~1.2 of the 2 cores busy; three were no
# faster and made browser tests time out). worksteal, not loadfile: schemathesis gives all its
# cases one test id, and the by-file schedulers key their queue by id (82 cases would run as 1).
PYTEST_WORKERS ?= 2
pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal

test: lint imports typecheck pytest

bench: $(VENV)/.installed-dev
	@for b in benchmarks/*_bench.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock: | $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
