# Two commands on a fresh machine: `make run` and `make test`. Each builds what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# SAM CLI pins its own boto3 and translator versions, so it lives in its own environment.
SAM_VENV := .venv-sam
ARGS ?= --user alice@example.test:password123

.PHONY: run test lint typecheck template unit functional e2e bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet 'aws-sam-cli>=1.120'
	touch $@

run: $(BIN)/.installed
	$(BIN)/mailpipe up $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy layers/mailcore/python/mailcore edge_smtp mailpipe
	# Every function's module is `app`, as Lambda imports it: one mypy run each.
	for function in functions/*/app.py; do $(BIN)/mypy $$function || exit 1; done

template: $(BIN)/.installed $(SAM_VENV)/.installed
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --region us-east-1

test: lint typecheck template
	$(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/python bench/pipeline_latency.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache
