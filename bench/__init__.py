"""Benchmarks. Each ``bench/NAME.py`` has ``run() -> dict`` of ``{metric: {value, unit, target}}``."""
