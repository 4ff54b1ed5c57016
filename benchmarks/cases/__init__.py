"""The benchmark cases a-e of the suite (see benchmarks/README.md)."""
