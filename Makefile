# lightning_distill: `make help` lists every target.
PY     ?= .venv/bin/python
PIP    ?= .venv/bin/pip
PYTEST ?= $(PY) -m pytest

.DEFAULT_GOAL := help
.PHONY: help install test test-slow test-all lint format bench

help: ## list every target with one line
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## create .venv and install the package with its dev extras (CPU is enough)
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -e ".[dev]"

test: ## the default test run (excludes slow and gpu tests; under 15 min on 2 cores)
	$(PYTEST) -q

test-slow: ## only the tests marked slow (full-size shapes, long training)
	$(PYTEST) -q -m slow

test-all: ## every CPU test, slow ones included
	$(PYTEST) -q -m "not gpu"

lint: ## ruff check and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: ## apply ruff's fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: ## run the benchmarks and rewrite their sections of BENCHMARKS.md
	$(PY) -m lightning_distill.data.bench --write BENCHMARKS.md
