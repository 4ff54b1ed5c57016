"""Benchmarks of logship against a real OpenSearch node: throughput, latency, memory, and peers.

Run the suite with `python -m benchmarks --mode quick|full|smoke` (see benchmarks/README.md).
"""
