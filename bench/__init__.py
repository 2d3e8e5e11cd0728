"""Benchmarks: how fast the engine runs cases, next to a bare Temporal baseline."""
