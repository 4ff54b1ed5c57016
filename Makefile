# logship: `make demo` runs the pipeline on this machine, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test lint typecheck pytest opensearch-start opensearch-stop clean bench bench-full bench-peers

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,aws]'
	touch $@

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

# ruff, mypy (strict on the packages), then unit, integration, end-to-end, fault and deploy tests
# against a real OpenSearch that the tests start themselves.
test: lint typecheck pytest

opensearch-start:
	scripts/opensearch.sh start

opensearch-stop:
	scripts/opensearch.sh stop

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache

# The pipeline on this machine in one command: a local OpenSearch (scripts/opensearch.sh, instance
# `demo` on port 9240, or OPENSEARCH_URL), the aggregator and the shipper with deploy/local/ configs,
# and generated EKS-node logs; live progress, then a summary. DURATION=seconds (default 30, 0 = until
# Ctrl-C), RATE=events/s, KEEP_OPENSEARCH=1 leaves the node running for the printed queries.
.PHONY: demo
demo: setup
	$(BIN)/python -m logship.demo

# The fault tests with long outages: OpenSearch paused/stopped and the aggregator missing for 10
# minutes while files rotate, logs written for 120 s while processes are killed, connections cut and
# files rotated. See docs/guarantees.md. OUTAGE=seconds, RUN=seconds override.
.PHONY: soak
soak: setup
	LOGSHIP_FAULT_OUTAGE_S=$${OUTAGE:-600} LOGSHIP_FAULT_RUN_S=$${RUN:-120} $(BIN)/pytest tests/faults -q

# Benchmarks against a real OpenSearch (its own node, `bench` on port 9230): progress on stderr,
# figures in benchmarks/results/<timestamp>.json plus PNG plots. See benchmarks/README.md.
bench: setup
	$(BIN)/python -m benchmarks --mode quick

bench-full: setup
	$(BIN)/python -m benchmarks --mode full

# the peers compared in the same run: Filebeat built from the Go module proxy, rsyslog from Debian
bench-peers:
	benchmarks/peers/build_filebeat.sh
	apt-get install -y rsyslog rsyslog-elasticsearch
