# Two commands for a fresh machine (see README): `make plan` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: install plan test lint bench

$(VENV)/.installed: requirements.txt requirements-dev.txt policies/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

## Offline plan of a stack: resources, monthly cost against budgets, policy verdicts (no cloud, no CLI).
plan: install
	$(PY) -m inferops plan --stack $(STACK)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

## The test suite (what CI runs).
test: lint
	$(PY) -m pytest

bench: install
	$(PY) bench/plan_bench.py
