# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test test-quick test-faults lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: $(VENV)/bin/python requirements.txt
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

## Start web + worker (+ an embedded Redis when REDIS_URL is unset). Ctrl-C stops all.
run: $(VENV)/.runtime
	$(BIN)/python -m devstack

# Tests run in one process per CPU, at most 4 (pytest-xdist); PYTEST_WORKERS= runs one.
PYTEST_WORKERS ?= -n auto --maxprocesses=4

## The whole test suite, slow fault tests included.
test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

## Everything but the slow tests: what to run between edits.
test-quick: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

## Only the slow tests that start and kill real processes.
test-faults: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_WORKERS) -m slow $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .

## Benchmarks are run by hand, never by the test suite.
bench: $(VENV)/.dev
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
