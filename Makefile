# export-preflight: everything a person does, as make targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help install run test test-unit test-integration lint format typecheck validate checkov build deploy bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt layers/preflight/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP) ## create .venv with the runtime and development dependencies

run: $(STAMP) ## run the main job locally on the embedded default (moto + simulators, no network)
	$(PY) -m sandbox.run

test: $(STAMP) ## run every test (unit, contract, simulators, integration)
	$(PY) -m pytest

test-unit: $(STAMP) ## fast tests only
	$(PY) -m pytest tests/unit tests/contract

test-integration: $(STAMP) ## the handler against moto and the simulators
	$(PY) -m pytest tests/integration

lint: $(STAMP) ## ruff lint + format check, mypy on the layer package
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(STAMP) ## apply ruff formatting and safe fixes
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

typecheck: $(STAMP)
	$(PY) -m mypy

validate: ## sam validate --lint, cfn-lint, checkov and sam build (own venvs: .venv-sam, .venv-checkov)
	bash .ci/sam-checks.sh

checkov: ## checkov security scan of template.yaml only (own venv: .venv-checkov)
	bash .ci/checkov.sh

build: validate ## same as validate: the build lands in .aws-sam/

deploy: validate ## deploy with SAM (needs AWS credentials; asks before changing anything)
	.venv-sam/bin/sam deploy --guided

bench: $(STAMP) ## the performance benchmark (writes docs/performance.md)
	$(PY) -m bench.preflight_bench

clean:
	rm -rf $(VENV) .venv-sam .venv-checkov .aws-sam .pytest_cache .mypy_cache .ruff_cache
