"""LiveCodeBench code generation: run the model's program against a problem's public + private tests in the sandbox.

Rows come from the "livecodebench" preparer (fusebench/preparers.py): `tests` ([{input, output}]), `testtype`
and, for functional (LeetCode) problems, `func_name`. A sample passes only if every test passes (tests run in
order; the first failure stops the run).

- "functional": the code (after an import prelude) runs once; each test calls `Solution().<func_name>(*args)`
  (a fresh instance per test; a top-level function of that name when there is no `Solution` class) with the
  arguments JSON-decoded one per input line, and compares the result with the JSON-decoded output (tuples count
  as lists).
- "stdin": for each test the program runs as `__main__` with the input on fd 0 / `sys.stdin` (so `input()`,
  `sys.stdin.buffer` and `open(0)` all work) and its standard output captured from fd 1; `exit()` with status 0
  ends it normally. Outputs match when their stripped lines are equal, or, token by token, equal as decimals
  ("1.0" == "1").

Each test has a 6 s limit (as LiveCodeBench); the whole run (6 + 1) s per test + 5 s of wall-clock time.
The prelude star-imports the usual standard-library modules (math, collections, itertools, heapq, bisect,
typing, ...), then restores the builtins they shadow, as LiveCodeBench's harness makes them available too.
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

_HARNESS = """
import builtins as _fb_builtins, json as _fb_json, os as _fb_os, signal as _fb_signal, sys as _fb_sys
import threading as _fb_threading
from decimal import Decimal as _FbDecimal, InvalidOperation as _FbInvalid


class _FbTimeout(BaseException):
    pass


def _fb_alarm(signum, frame):
    raise _FbTimeout()


def _fb_limited(seconds, fn, *args):
    _fb_signal.signal(_fb_signal.SIGALRM, _fb_alarm)
    _fb_signal.setitimer(_fb_signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        _fb_signal.setitimer(_fb_signal.ITIMER_REAL, 0)


def _fb_attempt(i, seconds, fn, *args):
    try:
        return _fb_limited(seconds, fn, *args)
    except _FbTimeout:
        raise AssertionError(f"test #{i}: time limit ({seconds} s) exceeded") from None
    except Exception as exc:
        raise AssertionError(f"test #{i}: {type(exc).__name__}: {exc}"[:400]) from None


def _fb_plain(value):
    if isinstance(value, (list, tuple)):
        return [_fb_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _fb_plain(v) for k, v in value.items()}
    return value


def _fb_functional(cases, func_name, seconds):
    namespace = globals()
    owner = namespace.get("Solution")
    if owner is None and not callable(namespace.get(func_name)):
        raise AssertionError(f"the solution defines neither class Solution nor {func_name}()")

    def call(args):
        target = getattr(owner(), func_name) if owner is not None else namespace[func_name]
        return target(*args)

    for i, case in enumerate(cases):
        args = [_fb_json.loads(line) for line in case["input"].split("\\n") if line.strip()]
        expected = _fb_json.loads(case["output"])
        got = _fb_attempt(i, seconds, call, args)
        if _fb_plain(got) != _fb_plain(expected):
            raise AssertionError(f"test #{i}: wrong answer: got {repr(got)[:200]}, expected {repr(expected)[:200]}")


def _fb_same_token(a, b):
    if a == b:
        return True
    try:
        return _FbDecimal(a) == _FbDecimal(b)
    except (_FbInvalid, ValueError):
        return False


def _fb_same_output(got, want):
    got_lines = [line.strip() for line in got.strip().splitlines()]
    want_lines = [line.strip() for line in want.strip().splitlines()]
    if got_lines == want_lines:
        return True
    if len(got_lines) != len(want_lines):
        return False
    for g, w in zip(got_lines, want_lines):
        gt, wt = g.split(), w.split()
        if len(gt) != len(wt) or not all(_fb_same_token(x, y) for x, y in zip(gt, wt)):
            return False
    return True


def _fb_script(code, stdin_text):
    with open("stdin.txt", "w", encoding="utf-8") as fh:
        fh.write(stdin_text)
    in_fd = _fb_os.open("stdin.txt", _fb_os.O_RDONLY)
    out_fd = _fb_os.open("stdout.txt", _fb_os.O_WRONLY | _fb_os.O_CREAT | _fb_os.O_TRUNC, 0o600)
    _fb_sys.stdout.flush()
    saved = (_fb_os.dup(0), _fb_os.dup(1), _fb_sys.stdin, _fb_sys.stdout)
    _fb_os.dup2(in_fd, 0)
    _fb_os.dup2(out_fd, 1)
    _fb_os.close(in_fd)
    _fb_os.close(out_fd)
    _fb_sys.stdin = open(0, "r", encoding="utf-8", closefd=False)
    _fb_sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
    try:
        exec(code, {"__name__": "__main__", "__builtins__": _fb_builtins})
        for thread in _fb_threading.enumerate():
            if thread is not _fb_threading.current_thread():
                thread.join()
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise RuntimeError(f"exit status {exc.code!r}") from None
    finally:
        try:
            _fb_sys.stdout.flush()
        except Exception:
            pass
        _fb_os.dup2(saved[0], 0)
        _fb_os.dup2(saved[1], 1)
        _fb_os.close(saved[0])
        _fb_os.close(saved[1])
        _fb_sys.stdin, _fb_sys.stdout = saved[2], saved[3]
    with open("stdout.txt", encoding="utf-8", errors="replace") as fh:
        return fh.read()


def _fb_stdin(source, cases, seconds):
    try:
        code = compile(source, "<solution>", "exec")
    except SyntaxError as exc:
        raise AssertionError(f"the solution does not compile: {exc}") from None
    try:
        _fb_os.fstat(0)
    except OSError:  # fd 0 closed: reopen it first, so that no file opened below lands there
        _fb_os.open(_fb_os.devnull, _fb_os.O_RDONLY)
    clean = dict(vars(_fb_builtins))
    for i, case in enumerate(cases):
        got = _fb_attempt(i, seconds, _fb_script, code, case["input"])
        if vars(_fb_builtins) != clean:
            raise AssertionError("the solution patched builtins")
        if not _fb_same_output(got, case["output"]):
            raise AssertionError(f"test #{i}: wrong answer: got {got[:200]!r}, expected {case['output'][:200]!r}")
"""


def lcb_program(item: dict[str, Any], code: str) -> tuple[Program, Limits]:
    """The sandbox program and limits that run `code` (already extracted) on a prepared LiveCodeBench row's tests."""
    tests = item["tests"]
    cases = json.dumps(tests)
    limits = replace(LIMITS, wall_s=(PER_TEST_S + 1) * len(tests) + 5)
    if item["testtype"] == "functional":
        call = f"\n_fb_functional(_fb_json.loads({cases!r}), {item['func_name']!r}, {PER_TEST_S!r})\n"
        return Program(PRELUDE + code, _HARNESS + call), limits
    if item["testtype"] == "stdin":
        call = f"\n_fb_stdin({PRELUDE + code!r}, _fb_json.loads({cases!r}), {PER_TEST_S!r})\n"
        return Program("", _HARNESS + call), limits
    raise UsageError(f"livecodebench scorer: unknown testtype {item['testtype']!r}")


def _verdict(outcome: Outcome) -> str:
    return "passed" if outcome.passed else f"{outcome.status}: {outcome.reason}"


@register("livecodebench")
def score_livecodebench(inp: ScoreInput) -> Score:
    """1.0 if the answer's code passes all of the problem's tests, else 0.0 with the first failure in `reason`."""
    if "tests" not in inp.item:
        raise UsageError("livecodebench scorer: the item has no 'tests' (use the livecodebench preparer)")
    code = extract_code(inp.output, inp.item.get("func_name"))
    program, limits = lcb_program(inp.item, code)
    outcome = default_sandbox().run(program, limits)
    return Score(float(outcome.passed), code, _verdict(outcome))
