# The two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CONSTRAINTS := requirements/constraints.txt
STAMP := $(VENV)/.installed
# A second environment without torch: proves ONNX pipelines and the built-in model need none.
NOTORCH := .venv-notorch
NOTORCH_STAMP := $(NOTORCH)/.installed

.PHONY: install demo test lint clean system-packages

$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c $(CONSTRAINTS) torch==2.13.0
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[torch,train,dev,spark,sparknlp]"
	touch $(STAMP)

$(NOTORCH_STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(NOTORCH)
	$(NOTORCH)/bin/pip install -q -c $(CONSTRAINTS) spacy transformers tokenizers huggingface-hub \
		onnxruntime onnx numpy typer rich
	$(NOTORCH)/bin/pip install -q --no-deps -e .
	touch $(NOTORCH_STAMP)

install: $(STAMP)

demo: install
	$(PY) -m spacy_nerzoo demo

lint: install
	$(PY) -m ruff check spacy_nerzoo tests

# Java and Chromium for the Spark and browser tests: installed with apt-get as root, else one
# line per group of tests that will skip. Silent, and no apt-get, once they are there.
system-packages:
	@bash scripts/system_packages.sh

# pytest exits 5 when it collected no tests (e.g. everything skipped by a filter): not a failure.
# -rs lists every skipped test with its reason at the end.
test: install $(NOTORCH_STAMP) lint system-packages
	$(PY) -m pytest -q -rs -p no:cacheprovider; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

clean:
	rm -rf $(VENV) $(NOTORCH) build dist *.egg-info
