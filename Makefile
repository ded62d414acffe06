# balsong: `make demo` runs the main job end to end; `make test` runs the tests.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
# Every target here runs against local servers and the carrier simulator: a development stack,
# whose secrets not set take the simulator's public values (unset, BALSONG_ENV is production).
export BALSONG_ENV = development

.PHONY: demo run test test-slow test-fault bench lint services install system-packages promtool lock

# Every dependency, direct and transitive, at the version and with the hashes of the lock files
# (requirements.lock: what the image runs; requirements-dev.lock: that and the dev extra, at the
# same versions). pip refuses any file whose hash is not there. Then balsong itself, no deps.
# Quiet when it works (the build backend's warnings are not for people running the demo); the
# whole log when it does not.
PIP_VERSION = 26.3
$(BIN)/.installed: requirements-dev.lock pyproject.toml
	@echo "installing balsong into $(VENV) (log: .run/install.log) ..."
	@mkdir -p .run
	@{ $(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q pip==$(PIP_VERSION) \
	   && $(BIN)/pip install -q --require-hashes -r requirements-dev.lock \
	   && $(BIN)/pip install -q --no-deps -e .; } > .run/install.log 2>&1 \
	   || { cat .run/install.log; echo "install failed: see .run/install.log" >&2; exit 1; }
	@touch $@

# Python packages only: no root needed (the tests' Debian packages come with `make test`).
install: $(BIN)/.installed

# Refresh the lock files from pyproject.toml, with pip-tools (pinned) in a venv of its own. Pins
# already in the files are kept unless pyproject.toml asks otherwise; `make lock UPGRADE=1` moves
# every transitive dependency to its newest release. Commit both files with pyproject.toml.
PIP_TOOLS_VERSION = 7.7.0
LOCK_VENV ?= .lock-venv
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile -q --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade)
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q pip==$(PIP_VERSION) pip-tools==$(PIP_TOOLS_VERSION)
	$(PIP_COMPILE) -o requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra dev -c requirements.lock -o requirements-dev.lock pyproject.toml

# Debian packages only the tests need (Hangul font for PDF statements, poppler-utils to read them
# back, chromium for the console's end-to-end tests); only what is missing, as root, or it names
# the command to run.
system-packages:
	bash scripts/ensure-system-packages.sh

services:
	bash scripts/ensure-services.sh

# Debian's prometheus package: promtool (config, rules and metrics checks) and the server the
# observability test starts. Installed only when missing.
promtool:
	bash scripts/ensure-promtool.sh

# Starts the simulator, API, worker, scheduler and callback dispatcher, sends a 100,000-recipient
# job over HTTP, shows its progress and prints the results summary; the stack then stays up (with
# the demo tenant's API key, the console's address and a curl) until Ctrl-C.
demo: install services
	@$(BIN)/balsong demo

# The Procfile's processes in the foreground until Ctrl-C (after migrating the database).
run: install services
	@$(BIN)/balsong db upgrade
	@$(BIN)/balsong run

# Unit, carrier-contract and integration tests on the real PostgreSQL, Redis and RabbitMQ.
test: install system-packages services promtool
	$(BIN)/pytest

# Integration tests that take half a minute or more each (rate-limit runs, schema fuzzing, Redis
# Cluster, an advertising job held overnight, callbacks under faults) and the console's browser
# suites; CI runs them after `make test`.
test-slow: install system-packages services
	$(BIN)/pytest -m slow

# Long runs that kill and restart real processes.
test-fault: install system-packages services promtool
	$(BIN)/pytest -m fault

bench: install services
	$(BIN)/python bench/throughput.py

lint: install promtool
	$(BIN)/ruff check .
	$(BIN)/mypy engine actors scheduler carriers api cli metrics
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
