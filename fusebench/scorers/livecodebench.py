"""LiveCodeBench code generation: run the model's program against a problem's public + private tests in the sandbox.

Rows come from the "livecodebench" preparer (fusebench/preparers.py): `tests` ([{input, output}]), `testtype`
and, for functional (LeetCode) problems, `func_name`. A sample passes only if every test passes (tests run in
order; the first failure stops the run). Every problem runs split (see fusebench.sandbox): the tests, the expected
outputs and the comparisons live in the judge, a process where no untrusted code runs; the model's process only
answers with plain data.

- "functional": the code (after an import prelude) runs once; each test calls `Solution().<func_name>(*args)`
  (a fresh instance per test; a top-level function of that name when there is no `Solution` class) with the
  arguments JSON-decoded one per input line, and the judge compares the result with the JSON-decoded output
  (tuples count as lists).
- "stdin": for each test the model's process runs the program as `__main__` with the input on fd 0 / `sys.stdin`
  (so `input()`, `sys.stdin.buffer` and `open(0)` all work) and sends back what it wrote to fd 1; `exit()` with
  status 0 ends it normally. The judge compares: outputs match when their stripped lines are equal, or, token by
  token, equal as decimals ("1.0" == "1").

Each test has a 6 s limit (as LiveCodeBench), enforced by the judge; the whole run (6 + 1) s per test + 5 s of
wall-clock time. The prelude star-imports the usual standard-library modules (math, collections, itertools, heapq,
bisect, typing, ...), then restores the builtins they shadow, as LiveCodeBench's harness makes them available too.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from fusebench.errors import UsageError
from fusebench.sandbox import Limits, Outcome, Program, default_sandbox
from fusebench.scorers.base import Score, ScoreInput, register
from fusebench.scorers.code import extract_code

PER_TEST_S = 6.0
_FENCE = "```"
LIMITS = Limits(memory_mb=4096, fsize_mb=256)

_MODULES = (
    "string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random", "statistics",
    "itertools", "functools", "operator", "json", "sys", "typing",
)  # fmt: skip
PRELUDE = (
    "".join(f"from {m} import *\n" for m in _MODULES)
    + "from builtins import *\n"  # undo the shadowing of pow, compile, ... by the star imports
    + "".join(f"import {m}\n" for m in _MODULES)
    + "sys.setrecursionlimit(50000)\n"
)

# Runs in the judge: `_fb` is the channel to the model's process (fusebench.sandbox._judge.Candidate).
_JUDGE = """
import json as _json
from decimal import Decimal as _Decimal, InvalidOperation as _Invalid


def _attempt(i, seconds, ask):
    try:
        return ask()
    except _fb.CallTimeout:
        raise AssertionError(f"test #{i}: time limit ({seconds} s) exceeded") from None
    except Exception as exc:
        raise AssertionError(f"test #{i}: {type(exc).__name__}: {exc}"[:400]) from None


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _functional(cases, func_name, seconds):
    kinds = _fb.kinds(["Solution", func_name])
    if kinds["Solution"] == "missing" and kinds[func_name] not in ("callable", "class"):
        raise AssertionError(f"the solution defines neither class Solution nor {func_name}()")
    for i, case in enumerate(cases):
        args = [_json.loads(line) for line in case["input"].split("\\n") if line.strip()]
        expected = _json.loads(case["output"])
        if kinds["Solution"] != "missing":
            got = _attempt(i, seconds, lambda: _fb.call("Solution", args, method=func_name, timeout=seconds))
        else:
            got = _attempt(i, seconds, lambda: _fb.call(func_name, args, timeout=seconds))
        if _plain(got) != _plain(expected):
            raise AssertionError(f"test #{i}: wrong answer: got {repr(got)[:200]}, expected {repr(expected)[:200]}")


def _same_token(a, b):
    if a == b:
        return True
    try:
        return _Decimal(a) == _Decimal(b)
    except (_Invalid, ValueError):
        return False


def _same_output(got, want):
    got_lines = [line.strip() for line in got.strip().splitlines()]
    want_lines = [line.strip() for line in want.strip().splitlines()]
    if got_lines == want_lines:
        return True
    if len(got_lines) != len(want_lines):
        return False
    for g, w in zip(got_lines, want_lines):
        gt, wt = g.split(), w.split()
        if len(gt) != len(wt) or not all(_same_token(x, y) for x, y in zip(gt, wt)):
            return False
    return True


def _stdin(cases, seconds):
    for i, case in enumerate(cases):
        got = _attempt(i, seconds, lambda: _fb.script(case["input"], timeout=seconds))
        if not _same_output(got, case["output"]):
            raise AssertionError(f"test #{i}: wrong answer: got {got[:200]!r}, expected {case['output'][:200]!r}")
"""


def lcb_program(item: dict[str, Any], code: str) -> tuple[Program, Limits]:
    """The sandbox program and limits that run `code` (already extracted) on a prepared LiveCodeBench row's tests."""
    tests = item["tests"]
    cases = json.dumps(tests)
    limits = replace(LIMITS, wall_s=(PER_TEST_S + 1) * len(tests) + 5)
    if item["testtype"] == "functional":
        call = f"\n_functional(_json.loads({cases!r}), {item['func_name']!r}, {PER_TEST_S!r})\n"
        return Program(PRELUDE + code, _JUDGE + call, calls=()), limits
    if item["testtype"] == "stdin":
        call = f"\n_stdin(_json.loads({cases!r}), {PER_TEST_S!r})\n"
        return Program(PRELUDE + code, _JUDGE + call, calls=(), script=True), limits
    raise UsageError(f"livecodebench scorer: unknown testtype {item['testtype']!r}")


def _verdict(outcome: Outcome) -> str:
    if outcome.passed:
        return "passed"
    if outcome.reason.startswith("SyntaxError") and outcome.reason.endswith("(in solution)"):
        return f"{outcome.status}: the solution does not compile: {outcome.reason.removesuffix(' (in solution)')}"
    return f"{outcome.status}: {outcome.reason}"


@register("livecodebench", parallel=True)  # sandboxed runs wait on subprocesses
def score_livecodebench(inp: ScoreInput) -> Score:
    """1.0 if the answer's code passes all of the problem's tests, else 0.0 with the first failure in `reason`.
    The code is what lcb_runner extracts (reference_code): the first fenced block, nothing without one."""
    return _run(inp, reference_code(inp.output))


@register("livecodebench_lenient", parallel=True)
def score_livecodebench_lenient(inp: ScoreInput) -> Score:
    """As livecodebench, with fusebench's extraction (scorers.code.extract_code): the fenced block that defines the
    entry point, else the longest Python block, else the whole answer when it has no fence."""
    return _run(inp, extract_code(inp.output, inp.item.get("func_name")))


def reference_code(output: str) -> str:
    """lcb_runner's extract_code for chat models as FuseEval's fork has it: the lines between the first two lines
    that contain a fence (```), or "" when there are fewer than two (upstream lcb_runner later took the last block)."""
    lines = output.split("\n")
    fences = [i for i, line in enumerate(lines) if _FENCE in line]
    return "\n".join(lines[fences[0] + 1 : fences[1]]) if len(fences) >= 2 else ""


def _run(inp: ScoreInput, code: str) -> Score:
    if "tests" not in inp.item:
        raise UsageError("livecodebench scorer: the item has no 'tests' (use the livecodebench preparer)")
    if not code.strip():
        return Score(0.0, None, "extraction_failed")
    program, limits = lcb_program(inp.item, code)
    outcome = default_sandbox().run(program, limits)
    return Score(float(outcome.passed), code, _verdict(outcome))
