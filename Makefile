# The two entry points of the README:
#   make run   install, then serve on the embedded default (SQLite in ./flowplane-data)
#   make test  install, then lint, type-check and test (SQLite, then PostgreSQL)
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install run test lint contract

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/flowplane server

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy controlplane

test: lint
	scripts/pytest.sh
	FLOWPLANE_TEST_DATABASE_URL=$(PG_URL) scripts/pytest.sh -m database

contract: install
	$(PY) -m controlplane.api.contract
