# Jarvis: `make run` starts the app, `make test` runs the whole suite.
# Each target bootstraps .venv itself; only Python 3.11+ and make are needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck pytest bench clean help

help:
	@echo "make run    - bootstrap .venv, start embedded PostgreSQL (unless DATABASE_URL), migrate, start the app"
	@echo "make test   - bootstrap .venv with dev extras, run ruff, mypy and pytest"
	@echo "make bench  - run the benchmarks in benchmarks/ (minutes; prints figures)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Jarvis needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/jarvis up

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check jarvis app.py app_pages tests benchmarks migrations
	$(BIN)/ruff format --check jarvis app.py app_pages tests benchmarks migrations

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(VENV)/.installed-dev
	@for b in benchmarks/*_bench.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
