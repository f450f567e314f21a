# Two commands do all the set-up on a fresh machine:
#   make run    creates .venv, installs the project, runs examples/quickstart.yaml
#   make test   creates or updates .venv and runs the whole suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/atlas run examples/quickstart.yaml

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -X faulthandler -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/loop_throughput.py

clean:
	rm -rf $(VENV) atlas.db atlas.db-wal atlas.db-shm
