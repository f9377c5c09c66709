# Two commands on a fresh machine: `make run` and `make test`. Each builds what it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every environment is installed from its lock file (requirements/, with hashes) by uv;
# `make lock` writes the locks (README, "Quick start").
UV := $(BIN)/uv
# SAM CLI pins its own boto3 and translator versions, so it lives in its own environment.
SAM_VENV ?= .venv-sam
# checkov pins many packages of its own, so it too has its own environment.
CHECKOV_VENV ?= .venv-checkov
ARGS ?= --user alice@example.test:password123
# `sam build` needs this Python on the build machine (see README, "Deploying").
RUNTIME ?= python3.12
LOCAL_RUNTIME := $(shell $(PYTHON) -c 'import sys; print("python%d.%d" % sys.version_info[:2])')

.PHONY: run test checks suite lint typecheck template bench build clean system-packages screenshots lock

# pip installs uv from its lock; uv makes the environment exactly the lock (sync removes
# what the lock does not name) and adds the project, editable, built by the locked setuptools.
$(BIN)/.installed: pyproject.toml requirements/uv.txt requirements/dev.txt
	@# Debian's python3 needs python3-venv for `-m venv`; install it when it is missing.
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/uv.txt
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes requirements/dev.txt
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $@

$(SAM_VENV)/.installed: requirements/sam.txt | $(BIN)/.installed
	$(PYTHON) -m venv $(SAM_VENV)
	$(UV) pip sync --quiet --python $(SAM_VENV)/bin/python --require-hashes requirements/sam.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.txt | $(BIN)/.installed
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(UV) pip sync --quiet --python $(CHECKOV_VENV)/bin/python --require-hashes \
		requirements/checkov.txt
	touch $@

# Writes every lock from its input: pyproject.toml (the development environment),
# requirements/*.in, layers/mailcore/requirements.in, edge/requirements.in. Versions already
# locked stay unless their input excludes them; UPGRADE=1 takes the newest allowed.
lock: | $(BIN)/.installed
	$(BIN)/python requirements/lock.py $(if $(UPGRADE),--upgrade)

# The webmail's runtime modules (and axe-core for its tests), exactly as the lock file pins
# them, into an ignored folder; nothing of them is committed.
webmail/node_modules/.installed: webmail/package.json webmail/package-lock.json
	cd webmail && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(BIN)/.installed webmail/node_modules/.installed
	$(BIN)/mailpipe up $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy layers/mailcore/python/mailcore edge mailpipe
	# Every function's module is `app`, as Lambda imports it: one mypy run each, with the
	# function's own folder on the path as in Lambda.
	for function in functions/*/app.py; do \
		MYPYPATH=$$(dirname $$function) $(BIN)/mypy $$function || exit 1; done

template: $(BIN)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(BIN)/cfn-lint template.yaml
	@# Every finding is fixed or justified next to its resource (Metadata: checkov: skip).
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --quiet \
		--compact --skip-download
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --region us-east-1
	@# The deployable artefacts build with this machine's Python (the runtime parameter);
	@# PYTHON_RUNTIME tells the layer's Makefile which of its locks to install.
	PYTHON_RUNTIME=$(LOCAL_RUNTIME) SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build \
		--parameter-overrides PythonRuntime=$(LOCAL_RUNTIME) --build-dir .aws-sam/check >/dev/null

# Real peers for the tests (Debian): swaks, Postfix and its smtp-source/smtp-sink; the
# IMAP clients mbsync (isync), offlineimap3 and fetchmail; Dovecot as the reference IMAP
# server (a private instance per test run, from its own configuration); Chromium for the
# webmail's browser tests; dnsmasq as the tests' private DNS server and OpenDKIM's
# opendkim-testmsg as a DKIM verifier that is not the library we sign with.
system-packages:
	@if ! command -v swaks >/dev/null || ! command -v postfix >/dev/null \
		|| ! command -v smtp-source >/dev/null || ! command -v mbsync >/dev/null \
		|| ! command -v offlineimap >/dev/null || ! command -v fetchmail >/dev/null \
		|| ! command -v dovecot >/dev/null || ! command -v chromium >/dev/null \
		|| ! command -v dnsmasq >/dev/null || ! command -v opendkim-testmsg >/dev/null; then \
		echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix swaks \
			isync offlineimap3 fetchmail dovecot-imapd chromium dnsmasq-base opendkim-tools; \
	fi

# Two workers, as this machine has two cores; a whole file to a worker, so a file's
# module-scoped stack starts once. `pytest -m "not e2e"` is the fast subset to iterate with.
# The checks (lint, mypy, the template's tools) run beside the suite, niced: the suite's
# workers wait on sockets and stacks for about a quarter of a run, and the checks fill
# that time instead of a minute of their own before it. Each one's output is kept whole.
test: system-packages webmail/node_modules/.installed $(BIN)/.installed
	$(MAKE) --no-print-directory -j2 --output-sync=target checks suite

checks: $(BIN)/.installed
	nice -n 15 $(MAKE) --no-print-directory -j3 --output-sync=target lint typecheck template

suite: $(BIN)/.installed system-packages webmail/node_modules/.installed
	cd webmail && npm test --silent
	$(BIN)/pytest -n 2 --dist loadfile --durations=25

# The README's screenshots, taken by the webmail's browser tests.
screenshots: $(BIN)/.installed system-packages webmail/node_modules/.installed
	MAILPIPE_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest -p no:randomly tests/e2e/test_webmail.py -k inline_images

bench: $(BIN)/.installed system-packages template webmail/node_modules/.installed
	$(BIN)/python bench/run_all.py

build: $(SAM_VENV)/.installed
	PYTHON_RUNTIME=$(RUNTIME) SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build \
		--parameter-overrides PythonRuntime=$(RUNTIME)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache
