# The two set-up commands: `make run` (the demo) and `make test` (everything CI runs).
# Each installs what it needs: a virtualenv with the Python dependencies, Debian's
# docker-registry, and cosign built with `go install` at pinned versions into .tools/.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=
OPA := .tools/opa-v1.22.2/opa
GATOR := .tools/gator-v3.23.1/gator
HELM := .tools/helm-v3.22.0/helm
CHART := gatekeeper/chart/signet

.PHONY: run test unit integration lint rego generate fmt tools venv bench fuzz clean

run: venv tools
	$(BIN)/python scripts/demo.py

test: venv tools lint rego
	$(BIN)/python -m pytest -q --durations=5 $(PYTEST_ARGS)

unit: venv
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

integration: venv tools
	$(BIN)/python -m pytest -q -m integration $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check provider tests bench scripts
	$(BIN)/ruff format --check provider tests bench scripts
	$(BIN)/mypy --strict provider tests bench scripts

# The policy pack: formatted, strict, tested with external_data mocked, >= 90 % covered, the
# generated templates up to date, and every gator suite passing.
rego: venv tools
	@unformatted=$$($(OPA) fmt -l rego); if [ -n "$$unformatted" ]; then \
	  echo "not opa-fmt formatted (run: make fmt): $$unformatted"; exit 1; fi
	$(OPA) check --strict rego
	$(OPA) test rego
	$(OPA) test --coverage --threshold 90 rego > /dev/null
	$(BIN)/python scripts/gen_templates.py --check
	@suites=$$(find gatekeeper -name suite.yaml -not -path '*/chart/*' | sort); \
	  test -n "$$suites" || { echo "no gator suites found"; exit 1; }; \
	  for suite in $$suites; do echo "$(GATOR) verify $$suite"; $(GATOR) verify $$suite || exit 1; done
	$(HELM) lint --strict $(CHART) -f $(CHART)/ci-values.yaml
	$(HELM) template signet $(CHART) -f $(CHART)/ci-values.yaml --namespace gatekeeper-system > /dev/null
	@if $(HELM) template signet $(CHART) > /dev/null 2>&1; then \
	  echo "the chart rendered without a trust config; it must refuse"; exit 1; fi

generate: venv
	$(BIN)/python scripts/gen_templates.py

fmt: venv tools
	$(BIN)/ruff format provider tests bench scripts
	$(BIN)/ruff check --fix provider tests bench scripts
	$(OPA) fmt -w rego

bench: venv tools
	$(BIN)/python bench/run.py
	$(BIN)/python bench/hostile.py
	$(BIN)/python bench/keyless.py
	$(BIN)/python bench/outage.py
	$(BIN)/python bench/replicas.py

# The fuzzers at length: Hypothesis with 5,000 examples per property, then atheris for
# FUZZ_SECONDS per target (crashes land in fuzz-artifacts/). `make test` runs both, bounded.
FUZZ_SECONDS ?= 60
fuzz: venv
	SIGNET_FUZZ_PROFILE=fuzz $(BIN)/python -m pytest -q tests/fuzz/test_properties.py
	$(BIN)/python -m tests.fuzz.run --all --seconds $(FUZZ_SECONDS) --corpus fuzz-corpus

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
