# Two commands for a fresh machine (see README): `make plan` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev

.PHONY: install install-spark tools plan test lint bench schema

$(VENV)/.installed: requirements.txt requirements-dev.txt policies/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-dev.txt
	# Bytecode once, at install, on every core: without it each start recompiles every module it imports
	# wherever PYTHONDONTWRITEBYTECODE is set (CI images, containers). Measured on the shared 2-core box:
	# pip's own (serial) compile 221 s wall / 68 s CPU, this 179 s / 74 s; `drift check` start 4.4 -> 2.5 s.
	$(PY) -m compileall -q -j 0 $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
		components inferops functions drift gitops finops policies/inferops_policy __main__.py >/dev/null
	touch $@

install: $(VENV)/.installed

## pyspark (about 500 MB) for the Spark engine's tests and local runs: not needed by `make plan`.
$(VENV)/.spark-installed: $(VENV)/.installed requirements-spark.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-spark.txt
	touch $@

install-spark: $(VENV)/.spark-installed

## Offline plan of a stack: resources, monthly cost against budgets, policy verdicts (no cloud, no CLI).
plan: install
	$(PY) -m inferops plan --stack $(STACK)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy components inferops functions drift gitops finops policies/inferops_policy __main__.py

## Tools the tests run against that PyPI does not ship (actionlint, Azurite, Java): idempotent.
tools:
	bash .ci/install-tools

## The test suite (what CI runs).
test: tools lint install-spark
	$(PY) -m pytest

bench: install
	$(PY) bench/plan_bench.py

## Regenerate the stack-config JSON Schema from components/spec.py.
schema: install
	$(PY) -c "import json; from components.spec import stack_config_json_schema as s; \
	open('schema/stack-config.schema.json', 'w').write(json.dumps(s(), indent=2, sort_keys=True) + '\n')"
