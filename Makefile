# balsong: `make demo` runs the main job end to end; `make test` runs the tests.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
# Every target here runs against local servers and the carrier simulator: a development stack,
# whose secrets not set take the simulator's public values (unset, BALSONG_ENV is production).
export BALSONG_ENV = development

.PHONY: demo test test-slow test-fault bench lint services install system-packages promtool

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed system-packages

# Debian packages (Hangul font for PDF statements, poppler-utils and chromium for tests); only what is missing.
system-packages:
	bash scripts/ensure-system-packages.sh

services:
	bash scripts/ensure-services.sh

# Debian's prometheus package: promtool (config, rules and metrics checks) and the server the
# observability test starts. Installed only when missing.
promtool:
	bash scripts/ensure-promtool.sh

# Starts the simulator, API, worker and scheduler, sends a 100,000-recipient job over HTTP,
# shows its progress and prints the results summary.
demo: install services
	$(BIN)/balsong demo

# Unit, carrier-contract and integration tests on the real PostgreSQL, Redis and RabbitMQ.
test: install services promtool
	$(BIN)/pytest

# Integration tests that take half a minute or more each (rate-limit runs, schema fuzzing, Redis
# Cluster, an advertising job held overnight); CI runs them after `make test`.
test-slow: install services
	$(BIN)/pytest -m slow

# Long runs that kill and restart real processes.
test-fault: install services promtool
	$(BIN)/pytest -m fault

bench: install services
	$(BIN)/python bench/throughput.py

lint: install promtool
	$(BIN)/ruff check .
	$(BIN)/mypy engine actors scheduler carriers api cli metrics
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml
