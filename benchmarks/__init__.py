"""seqzoo benchmarks: `python -m benchmarks [SUITE ...]`; see benchmarks/README.md."""
