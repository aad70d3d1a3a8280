# The two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CONSTRAINTS := requirements/constraints.txt
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c $(CONSTRAINTS) torch==2.13.0
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[torch,train,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m spacy_nerzoo.demo

lint: install
	$(PY) -m ruff check spacy_nerzoo tests

# pytest exits 5 when it collected no tests (e.g. everything skipped by a filter): not a failure.
test: install lint
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

clean:
	rm -rf $(VENV) build dist *.egg-info
