# lightning_distill: `make help` lists every target.
PY     ?= .venv/bin/python
PIP    ?= .venv/bin/pip
PYTEST ?= $(PY) -m pytest

.DEFAULT_GOAL := help
.PHONY: help install test test-slow test-all lint format bench regress regress-update

help: ## list every target with one line
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## create .venv and install the package with its dev extras (CPU is enough)
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -e ".[dev]"

# Two workers, one per core: every test runs its torch on one thread (tests/conftest.py), so one process
# leaves the second core idle. Files stay whole on a worker, so a module's fixtures are built once.
TEST_WORKERS ?= -n 2 --dist loadfile

test: ## the default test run (excludes slow and gpu tests; under 15 min on 2 cores)
	$(PYTEST) -q $(TEST_WORKERS)

test-slow: ## only the tests marked slow (full-size shapes, long training; one process: two would hold two full-size UNets)
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

REGRESS_OUT ?= runs/regress
# Extra overrides of the regression run, e.g. REGRESS_ARGS="recipe.mse.iterations=2" to see it fail.
REGRESS_ARGS ?=
REGRESS_EVAL = $(PY) -m eval run=$(REGRESS_OUT) out=$(REGRESS_OUT)/eval +eval=toy eval.clips_per_style=64 \
	eval.naive_steps=[8] eval.teacher_full=null

regress: ## short toy distillation + toy eval, compared with eval/baselines/regress_toy.json (fails on a regression)
	rm -rf $(REGRESS_OUT)
	$(PY) -m lightning_distill +experiment=regress run_dir=$(REGRESS_OUT) trainer.enable_progress_bar=false $(REGRESS_ARGS)
	$(REGRESS_EVAL)
	$(PY) -m eval.regress $(REGRESS_OUT)/eval/metrics.json

regress-update: ## rerun the regression eval and make its metrics the new baseline (the explicit command)
	rm -rf $(REGRESS_OUT)
	$(PY) -m lightning_distill +experiment=regress run_dir=$(REGRESS_OUT) trainer.enable_progress_bar=false $(REGRESS_ARGS)
	$(REGRESS_EVAL)
	$(PY) -m eval.regress $(REGRESS_OUT)/eval/metrics.json --update
