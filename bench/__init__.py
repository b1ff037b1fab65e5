"""Benchmarks: each runs the peer or the limit in the same run and prints a ratio."""
