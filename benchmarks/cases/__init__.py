"""Benchmark cases; each module defines cases(quick) -> list of harness.Case."""
