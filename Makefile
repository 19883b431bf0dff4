# Two commands set up a fresh machine: `make synth`, then `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHECKOV_VENV := .venv-checkov
CDK := npx --no-install cdk

# Offline, quiet, no account needed.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
CDK_FLAGS := --no-notices --no-version-reporting
# Synth and tests never ask the EC2 instance metadata service for credentials (it would
# only time out off EC2); deploy, promote and preflight may use an instance role.
cdk.out/.synthesized synth test pytest: export AWS_EC2_METADATA_DISABLED := true

.PHONY: synth test lint cfn-lint checkov pytest deploy promote preflight destroy bench clean install

# Installs are skipped when their inputs did not change (stamp files).
$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/bin/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed node_modules/.installed

# Extra context for synth and deploy, e.g. make synth CONTEXT="-c serving_mode=serverless".
CONTEXT ?=
# The CONTEXT of the last synth, rewritten only when it differs: a different CONTEXT is an
# input that changed, the same one is not.
SYNTH_CONTEXT := .synth-context
$(shell [ -f $(SYNTH_CONTEXT) ] && [ "$$(cat $(SYNTH_CONTEXT))" = "$(CONTEXT)" ] || printf '%s' "$(CONTEXT)" > $(SYNTH_CONTEXT))

# Synthesized again only when an input changed (`make test` after `make synth` reuses it).
SYNTH_INPUTS := app.py cdk.json $(SYNTH_CONTEXT) $(shell find stacks lambdas -name '*.py' -not -path '*/__pycache__/*')
cdk.out/.synthesized: $(BIN)/.installed node_modules/.installed $(SYNTH_INPUTS)
	rm -rf cdk.out
	PATH="$(abspath $(BIN)):$$PATH" $(CDK) synth --quiet $(CDK_FLAGS) $(CONTEXT)
	touch $@

synth: cdk.out/.synthesized
	@ls cdk.out/*.template.json

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Rules ignored, with reasons, live in .cfnlintrc.yaml.
cfn-lint: synth
	$(BIN)/cfn-lint cdk.out/*.template.json

# Skips, with reasons, live in .checkov.yaml.
checkov: synth $(CHECKOV_VENV)/bin/.installed
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --directory cdk.out

# Two workers (pytest-xdist): this machine has 2 cores; each worker builds the app once.
# --dist loadfile keeps a module on one worker, so its module-scoped fixtures (apps,
# moto worlds) are built once: 143 s instead of 175 s for the same 1,107 tests.
pytest: install
	$(BIN)/pytest -n 2 --dist loadfile

# pytest runs last so that its summary is the closing line of `make test`.
test: lint synth cfn-lint checkov
	$(MAKE) --no-print-directory pytest

deploy: install
	PATH="$(abspath $(BIN)):$$PATH" $(CDK) deploy --all --require-approval broadening $(CDK_FLAGS) $(CONTEXT)

# Serve the newest approved model: checks the pointer, then deploys Grocery-Serving only.
promote: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m grocery promote

# Read-only checks of the account before the first deploy or training run (exit 1 on a blocker).
preflight: install
	$(BIN)/python -m grocery preflight

destroy: install
	PATH="$(abspath $(BIN)):$$PATH" $(CDK) destroy --all $(CDK_FLAGS)

# Figures next to a baseline measured in the same run (bench_prepare needs the dataset:
# DATASET=path/to/GroceryStoreDataset, default ~/data/GroceryStoreDataset).
DATASET ?= $(HOME)/data/GroceryStoreDataset
bench: install
	$(BIN)/python benchmarks/bench_decode.py
	$(BIN)/python benchmarks/bench_classify_handler.py
	$(BIN)/python benchmarks/bench_prepare.py --source $(DATASET)

clean:
	rm -rf cdk.out $(SYNTH_CONTEXT) .pytest_cache .ruff_cache .coverage htmlcov
