# The two entry points of the README:
#   make run   install the runtime only, then serve on the embedded default (SQLite in ./flowplane-data)
#   make test  install the extras and dev tools, then lint, type-check and test (SQLite, then PostgreSQL)
# Packaging:
#   make dist      wheel + sdist in dist/, checked by twine
#   make provider  dist/terraform-provider-flowplane_<version>_linux_amd64.zip (PyInstaller, one file)
#   make image     the container image (podman, no registry; see scripts/image-smoke)
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' controlplane/__init__.py)

.PHONY: install install-dev run test lint contract dist provider image

# Two stamps in one venv: `run` needs only the runtime dependencies; `test`
# adds the extras (kubernetes, terraform) and the dev tools on top.
$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime

install-dev: $(VENV)/.installed

run: install
	$(VENV)/bin/flowplane server

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy controlplane

# One pytest process by default. `make test PYTEST_ARGS="-n 2 --dist loadfile"` runs two
# pytest-xdist workers (on PostgreSQL each gets its own database, tests/conftest.py);
# a two-worker run on this 2-core machine hit SQLite "disk I/O error"s in one worker
# that are not explained yet, so CI stays serial.
PYTEST_ARGS ?=
test: lint
	scripts/pytest.sh $(PYTEST_ARGS)
	FLOWPLANE_TEST_DATABASE_URL=$(PG_URL) scripts/pytest.sh $(PYTEST_ARGS) -m database

contract: install-dev
	$(PY) -m controlplane.api.contract

dist: install-dev
	rm -rf dist/flowplane-*
	$(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/flowplane-$(VERSION)*

provider:
	scripts/build-provider dist

image:
	scripts/image-smoke --build-only
