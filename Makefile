# logship: `make demo` runs the pipeline on this machine, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test lint typecheck pytest pytest-opensearch3 opensearch-start opensearch-stop clean bench bench-full bench-peers

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

# The OpenSearch 3.x pass: what touches OpenSearch's API (template, _bulk, versions, the CLI's checks)
# and the whole pipeline end to end, against 3.3.0 in an instance of its own.
OPENSEARCH3_VERSION ?= 3.3.0
OPENSEARCH3_TESTS := tests/integration/test_aggregator_opensearch.py tests/integration/test_aggregator_cli.py \
	tests/integration/test_opensearch_harness.py tests/e2e/test_e2e_pipeline.py

pytest: setup
	$(BIN)/pytest
	$(MAKE) pytest-opensearch3

pytest-opensearch3: setup
	LOGSHIP_TEST_OPENSEARCH_VERSION=$(OPENSEARCH3_VERSION) \
	LOGSHIP_TEST_OPENSEARCH_PORT=$${LOGSHIP_TEST_OPENSEARCH3_PORT:-9203} $(BIN)/pytest $(OPENSEARCH3_TESTS)

# ruff, mypy (strict on the packages), then unit, integration, end-to-end, fault and deploy tests
# against a real OpenSearch 2.19 that the tests start themselves, the cluster tests against a 3-node
# 2.19 cluster they start (tests/cluster, ports LOGSHIP_TEST_CLUSTER_PORT=9260..9262), then the
# OpenSearch 3.3 pass.
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
# files rotated, and the multi-aggregator runs (a killed and an added aggregator, 50 shippers against
# three aggregators) for RUN seconds; on the 3-node cluster (tests/cluster) a node killed for as long,
# the elected cluster-manager paused for as long, the write queues full for the whole run.
# See docs/guarantees.md. OUTAGE=seconds, RUN=seconds override.
.PHONY: soak
soak: setup
	LOGSHIP_FAULT_OUTAGE_S=$${OUTAGE:-600} LOGSHIP_FAULT_RUN_S=$${RUN:-120} $(BIN)/pytest tests/faults tests/cluster -q

# Benchmarks against a real OpenSearch (its own node, `bench` on port 9230): progress on stderr,
# figures in benchmarks/results/<timestamp>.json plus PNG plots. See benchmarks/README.md.
bench: setup
	$(BIN)/python -m benchmarks --mode quick

bench-full: setup
	$(BIN)/python -m benchmarks --mode full

# the peers compared in the same run: Filebeat built from the Go module proxy, Fluent Bit from the shared
# source folder (skipped, and reported as not measured, where that folder is missing), rsyslog from Debian
bench-peers:
	benchmarks/peers/build_filebeat.sh
	FILEBEAT_VERSION=v9.3.0 benchmarks/peers/build_filebeat.sh
	benchmarks/peers/build_fluentbit.sh || echo "Fluent Bit not built: the benchmarks report it as not measured"
	apt-get install -y rsyslog rsyslog-elasticsearch
