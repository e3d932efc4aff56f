"""Isolated, resource-limited execution of untrusted (model-written) programs; split verdicts decided in a process
where no untrusted code runs (see runner.py)."""

from fusebench.sandbox.limits import Limits, scaled_timeout
from fusebench.sandbox.runner import (
    Isolation,
    Outcome,
    Program,
    Sandbox,
    Status,
    default_sandbox,
    run_many,
    run_program,
)

__all__ = [
    "Isolation",
    "Limits",
    "Outcome",
    "Program",
    "Sandbox",
    "Status",
    "default_sandbox",
    "run_many",
    "run_program",
    "scaled_timeout",
]
