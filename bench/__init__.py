"""Benchmarks: each bench/NAME.py has run() -> {metric: {value, unit, target}}."""
