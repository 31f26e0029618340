"""Benchmark suite: qtorch vs native torch (python -m benchmarks)."""
