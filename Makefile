# The two commands a fresh clone needs: `make run` and `make test`.
# Both create .venv if it is missing and install what they need from pip wheels only
# (Temporal's servers and PostgreSQL included); nothing else is downloaded.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint down clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime only, for `make run`; re-installed when pyproject.toml changes.
$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

# Runtime plus test and lint tools, for `make test`.
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.run-installed

## run: start the embedded stack and a worker, open a demo portfolio, watch it live (Ctrl-C)
run: $(VENV)/.run-installed
	$(BIN)/dunning demo

## test: lint, type-check and run the whole suite on real servers from wheels
test: $(VENV)/.dev-installed lint
	$(BIN)/pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## down: stop the embedded stack (data is kept in .dunning/)
down: $(VENV)/.run-installed
	$(BIN)/dunning dev down

clean: down
	rm -rf .dunning
