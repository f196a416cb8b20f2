# Quick start: `make audit` runs the main job on the built-in data; `make test` runs the tests.
# Both create .venv the first time: `make audit` installs vaeloss, `make test` also its test
# tools and every optional framework (the extra `all`: Keras, TensorFlow, JAX, Lightning, Ray,
# TensorBoard), so that the tests that need one run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAMP_ALL := $(VENV)/.installed-all

.PHONY: audit test test-under-load lint bench examples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

$(STAMP_ALL): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,all]'
	touch $(STAMP_ALL)

audit: $(STAMP)
	$(BIN)/vaeloss audit

test: $(STAMP_ALL)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=10
	$(BIN)/ruff check vaeloss tests scripts bench
	$(BIN)/mypy vaeloss

# The suite beside one competing busy process (a CI runner is a busy machine): the process is
# started here and stopped however the tests end.
test-under-load: $(STAMP_ALL)
	@$(BIN)/python -c "while True: pass" & busy=$$!; \
	trap "kill $$busy 2>/dev/null" EXIT; \
	echo "busy process $$busy started beside the suite"; \
	$(MAKE) --no-print-directory test

lint: $(STAMP_ALL)
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
