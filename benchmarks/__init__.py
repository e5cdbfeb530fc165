"""seqzoo benchmarks: `python -m benchmarks [SUITE ...]`; see docs/benchmarks.md."""
