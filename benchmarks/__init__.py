"""Declarative benchmark specs, suites and bundled data (installed as `fusebench_benchmarks`)."""

from pathlib import Path


def location() -> Path:
    """The folder holding the benchmark specs."""
    return Path(__file__).resolve().parent
