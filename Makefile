# export-preflight: everything a person does, as make targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The locks: hash-pinned, compiled by `make lock` from the .in files next to them.
LAYER_LOCK := layers/preflight/requirements.txt
DEV_LOCK   := requirements-dev.txt

.PHONY: help check-python install lock lock-check run readiness test test-unit test-integration lint format typecheck validate checkov build check-env deploy-check deploy deploy-guided bench new-connector clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# Python 3.11, 3.12 or 3.13 (pyproject: >= 3.11; the Lambda runs 3.13, named in
# .python-version). Any other PYTHON stops here with what to do.
check-python: ## check that PYTHON (default python3) is 3.11, 3.12 or 3.13, or say what to do
	@if ! $(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' >/dev/null 2>&1; then \
	  echo "ERROR: PYTHON=$(PYTHON) is $$($(PYTHON) --version 2>/dev/null || echo 'not a working Python here')." >&2; \
	  echo "  export-preflight needs Python 3.11, 3.12 or 3.13 (the Lambda runtime is 3.13, see .python-version)." >&2; \
	  echo "  Install one and point make at it, e.g.: make install PYTHON=python3.13" >&2; \
	  exit 1; \
	fi
	@echo "Python: $(PYTHON) is $$($(PYTHON) --version 2>&1) (supported: 3.11-3.13; the Lambda runs 3.13)"

# The venv is made afresh (--clear) whenever a lock changes: it then holds exactly
# the lock, nothing left over. pip is first brought to the lock's version (the
# venv's bundled pip is older and much slower), then checks every file against
# the lock's hashes (-qq: errors only, which keeps this machine's index warnings out).
$(STAMP): $(DEV_LOCK) $(LAYER_LOCK) pyproject.toml
	@$(MAKE) --no-print-directory check-python PYTHON=$(PYTHON)
	$(PYTHON) -m venv --clear $(VENV)
	sed -n '/^pip==/,/[^\\]$$/p' $(DEV_LOCK) > $(VENV)/pip-lock.txt
	$(PY) -m pip install -qq --require-hashes -r $(VENV)/pip-lock.txt
	$(PY) -m pip install -qq --require-hashes -r $(DEV_LOCK)
	$(PY) -m pip install -qq --no-deps --no-build-isolation --no-index -e .
	touch $(STAMP)

install: $(STAMP) ## create .venv (Python 3.11-3.13) with the locked dependencies and the export-preflight command

# uv (pinned in the dev lock) resolves once for every platform and Python >= 3.11
# (--universal), so one lock serves the 3.11/3.13 venvs and the arm64 Lambda, and
# records the hash of every file of each pinned version. Existing pins are kept
# unless the .in files need otherwise; LOCK_FLAGS=--upgrade (or
# "--upgrade-package NAME") moves them.
LOCK_FLAGS ?=
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(LOCK_FLAGS)

lock: $(STAMP) ## recompile both hash-pinned locks from the .in files (LOCK_FLAGS=--upgrade to move pins)
	@set -e; for pair in "layers/preflight/requirements.in $(LAYER_LOCK)" "requirements-dev.in $(DEV_LOCK)"; do \
	  set -- $$pair; cp "$$2" "$$2.new"; \
	  $(UV_COMPILE) "$$1" -o "$$2.new" || { rm -f "$$2.new"; exit 1; }; \
	  if cmp -s "$$2.new" "$$2"; then rm "$$2.new"; echo "$$2: unchanged"; \
	  else mv "$$2.new" "$$2"; echo "$$2: updated (commit it with its .in)"; fi; \
	done

# No network: every pin of the .in files must be in its lock (catches an .in edited
# without `make lock`). CI runs it.
lock-check: ## check that the locks pin what the .in files ask for (no network)
	@set -e; for pair in "layers/preflight/requirements.in $(LAYER_LOCK)" "requirements-dev.in $(DEV_LOCK)"; do \
	  set -- $$pair; \
	  for pin in $$(awk -F'==' '/^[A-Za-z0-9]/ && NF == 2 { n = tolower($$1); sub(/\[.*/, "", n); \
	      gsub(/[._]+/, "-", n); split($$2, v, /[ ;#]/); print n "==" v[1] }' "$$1"); do \
	    grep -q "^$$pin " "$$2" || { echo "ERROR: $$2 lacks $$pin from $$1: run make lock" >&2; exit 1; }; \
	  done; \
	  echo "$$2: pins every requirement of $$1"; \
	done

run: $(STAMP) ## run the main job locally on the embedded default (moto + simulators, no network)
	$(PY) -m sandbox.run

# Tests run in TEST_WORKERS processes (pytest-xdist; each worker has its own sandbox on
# loopback). Three suit two cores: much of the suite waits on sockets. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3

test: $(STAMP) ## run every test (unit, contract, simulators, integration) in TEST_WORKERS processes
	$(PY) -m pytest -n $(TEST_WORKERS)

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

typecheck: $(STAMP) ## mypy (strict) on the layer package
	$(PY) -m mypy

validate: ## sam validate --lint, cfn-lint, checkov and sam build (own venvs: .venv-sam, .venv-checkov)
	bash .ci/sam-checks.sh

checkov: ## checkov security scan of template.yaml only (own venv: .venv-checkov)
	bash .ci/checkov.sh

build: validate ## same as validate: the build lands in .aws-sam/

# The environment to deploy: a [<ENV>.deploy.parameters] section of samconfig.toml.
ENV ?= staging

check-env: ## check that samconfig.toml has a section for ENV (default staging)
	@grep -q '^\[$(ENV)\.deploy\.parameters\]' samconfig.toml || { \
	  echo "ERROR: samconfig.toml has no [$(ENV).deploy.parameters]: use ENV=staging or ENV=prod," >&2; \
	  echo "  or create it with: make deploy-guided ENV=$(ENV)" >&2; exit 1; }

# Before anything is built: credentials (sts get-caller-identity), Region and a real AlarmEmail.
deploy-check: $(STAMP) ## check AWS credentials, Region and AlarmEmail for ENV (deploy runs it before building)
	$(PY) -m deploy.check $(ENV)

deploy: check-env ## deploy ENV (default staging) as samconfig.toml says; shows the change set and asks first
	@$(MAKE) --no-print-directory deploy-check ENV=$(ENV)
	@$(MAKE) --no-print-directory validate
	.venv-sam/bin/sam deploy --config-env $(ENV)
	@$(PY) -m deploy.check --next-steps $(ENV)

deploy-guided: validate ## first deploy of ENV: answer SAM's questions, saved into samconfig.toml [ENV.*]
	.venv-sam/bin/sam deploy --guided --config-env $(ENV)

readiness: $(STAMP) ## run the readiness sweep locally (moto + simulators) and print the readiness table
	$(PY) -m sandbox.readiness

bench: $(STAMP) ## the performance benchmark (writes docs/performance.md)
	$(PY) -m bench.preflight_bench

# The skeleton of a new accounting system (docs/connectors.md, "Adding an accounting system"):
# it fails its conformance tests until filled in, and prints what to fill in.
new-connector: $(STAMP) ## write the skeleton of a new accounting system: make new-connector NAME=acme
	@test -n "$(NAME)" || { echo "ERROR: name the system: make new-connector NAME=acme" >&2; exit 1; }
	$(PY) -m sandbox.new_connector $(NAME)

clean: ## remove the venvs, the sam build and the tool caches
	rm -rf $(VENV) .venv-sam .venv-checkov .aws-sam .pytest_cache .mypy_cache .ruff_cache
