"""The whole pipeline on one machine: `make demo` / `python -m logship.demo`.

`pipeline` runs the shipper and the aggregator as real processes and reads their metrics;
`search` asks OpenSearch what arrived; `main` ties them to the log generator, shows progress and
prints the summary. The end-to-end tests use the same `pipeline`, `search` and `verify` modules.
"""
