# The two set-up commands: `make run` (the demo) and `make test` (everything CI runs).
# Each installs what it needs: a virtualenv with the Python dependencies, Debian's
# docker-registry, and cosign built with `go install` at pinned versions into .tools/.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: run test unit integration lint fmt tools venv bench clean

run: venv tools
	$(BIN)/python scripts/demo.py

test: venv tools lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

unit: venv
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

integration: venv tools
	$(BIN)/python -m pytest -q -m integration $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check provider tests bench scripts
	$(BIN)/ruff format --check provider tests bench scripts
	$(BIN)/mypy --strict provider tests bench scripts

fmt: venv
	$(BIN)/ruff format provider tests bench scripts
	$(BIN)/ruff check --fix provider tests bench scripts

bench: venv tools
	$(BIN)/python bench/run.py

tools:
	bash scripts/install-tools.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache run
