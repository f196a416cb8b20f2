# Quick start: `make audit` runs the main job on the built-in data; `make test` runs the tests.
# Both create .venv and install vaeloss with its test extras the first time, and only then.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: audit test lint bench examples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

audit: $(STAMP)
	$(BIN)/vaeloss audit

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=10
	$(BIN)/ruff check vaeloss tests scripts bench
	$(BIN)/mypy vaeloss

lint: $(STAMP)
	$(BIN)/ruff check vaeloss tests scripts bench
	$(BIN)/ruff format --check vaeloss tests scripts bench
	$(BIN)/mypy vaeloss

bench: $(STAMP)
	$(BIN)/python bench/contention.py
	$(BIN)/python bench/check_speed.py
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/loss_speed.py

examples: $(STAMP)
	$(BIN)/python scripts/regenerate_examples.py reports

clean:
	rm -rf $(VENV)
