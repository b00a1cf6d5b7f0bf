# spbe-monitor: two commands matter.
#   make demo  - install what is needed and run the collector + dashboard API + a local agent
#   make test  - install what the tests need (Debian + PyPI) and run lint, types and all tests
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv deps-test lint test demo bench clean

$(VENV)/.installed: pyproject.toml
	bash scripts/ensure-python.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

deps-test:
	bash scripts/install-test-deps.sh
	@for s in scripts/install-netlab-deps.sh scripts/install-backup-deps.sh \
	          scripts/install-inventory-deps.sh; do \
	  if [ -f $$s ]; then bash $$s $(VENV) || exit 1; fi; done

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: venv deps-test lint
	$(PY) -m pytest

demo: venv
	bash scripts/demo.sh

bench: venv deps-test
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) demo/ build/ *.egg-info
