"""Code scorers: HumanEval, MBPP and MBPP+ (EvalPlus v0.1.0), run in fusebench's sandbox.

- "humaneval": the program is the prompt followed by the model's code: a completion of the prompt's function,
  or a whole function (which then replaces the prompt's stub, keeping the prompt's imports and helpers);
  then the row's `test` and `check(entry_point)`.
- "mbpp": original MBPP rows (`test_list`): the row's `test_setup_code` and asserts. MBPP+ rows: the base
  tests as "mbpp_base"; the plus verdict is only reported in `Score.reason`.
- "mbpp_base" / "mbpp_plus": MBPP+ rows as EvalPlus scores them: the candidate's output on each input must
  equal the canonical solution's (floats within `atol`, 1e-6 when the row says 0, rtol 1e-7); "base" runs
  `base_input`, "plus" runs `base_input` + `plus_input`. Expected outputs come from running the canonical
  solution in the sandbox once per task (cached); they stay pickled and are only unpickled inside the sandbox.
  Not replicated from EvalPlus: its per-task input conversions (lists to tuples) and special-case oracles.

Time limits: HumanEval 6 s and MBPP 20 s wall-clock; MBPP+ max(4 s, 4 x the canonical run's duration).
"""

from __future__ import annotations

import ast
import base64
import contextlib
import hashlib
import json
import logging
import pickle
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fusebench.errors import UsageError
from fusebench.sandbox import Limits, Outcome, Program, default_sandbox
from fusebench.scorers.base import Score, ScoreInput, register

log = logging.getLogger(__name__)

HUMANEVAL_LIMITS = Limits(wall_s=6.0)
MBPP_LIMITS = Limits(wall_s=20.0, memory_mb=4096)  # MBPP/123 (canonical) takes ~6 s alone
REFERENCE_FLOOR_S = 4.0
REFERENCE_FACTOR = 4.0
_PY_LANGS = frozenset({"", "python", "py", "python3", "py3"})
_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_EXPECTED_MARK = "@@FUSEBENCH_EXPECTED@@"
_REPR_TAG = "@@fusebench-unpicklable-output@@"  # such outputs (e.g. re.Match) are compared by repr()
_DIGEST_TAG = "@@fusebench-large-output@@"  # outputs over _BIG bytes pickled: compared by sha256 of repr()
_BIG = 1 << 20

# --- extraction ----------------------------------------------------------------------------------------


def _defines(code: str, name: str, top_level: bool = False) -> bool:
    indent = "" if top_level else r"[ \t]*"
    return re.search(rf"^{indent}(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None


def extract_code(text: str, entry_point: str | None = None) -> str:
    """The code in a chat answer: the fenced block defining `entry_point`, else the longest (last on ties)
    Python or unlabelled block, else any fenced block, else the text itself."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    if not blocks:
        return text
    python = [body for lang, body in blocks if lang in _PY_LANGS] or [body for _, body in blocks]
    if entry_point:
        defining = [body for body in python if _defines(body, entry_point)]
        python = defining or python
    return max(reversed(python), key=len)  # max keeps the first maximum: of the reversed list, the last


# --- programs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Sandbox runs for one sample, and how their outcomes make its Score."""

    extracted: str
    runs: list[tuple[Program, Limits]]
    combine: Callable[[list[Outcome]], Score]


def _verdict(outcome: Outcome) -> str:
    if outcome.passed:
        return "passed"
    detail = f" [{outcome.failed_test}]" if outcome.failed_test else ""
    return f"{outcome.status}: {outcome.reason}{detail}"


def _single(code: str, program: Program, limits: Limits) -> _Plan:
    def combine(outcomes: list[Outcome]) -> Score:
        return Score(float(outcomes[0].passed), code, _verdict(outcomes[0]))

    return _Plan(code, [(program, limits)], combine)


def humaneval_program(item: dict[str, Any], completion: str) -> Program:
    """The HumanEval program for a model answer: prompt + completion, or prompt + a whole function."""
    entry = item["entry_point"]
    code = extract_code(completion, entry)
    body = item["prompt"] + "\n" + code if _defines(code, entry, top_level=True) else item["prompt"] + code
    return Program(body, f"{item['test']}\n\ncheck({entry})\n")


def _humaneval_plan(inp: ScoreInput) -> _Plan:
    program = humaneval_program(inp.item, inp.output)
    return _single(extract_code(inp.output, inp.item["entry_point"]), program, HUMANEVAL_LIMITS)


def mbpp_entry_point(item: dict[str, Any]) -> str | None:
    """The function an original MBPP row tests: the first name called in its first assert that its code defines."""
    for name in re.findall(r"(\w+)\s*\(", item["test_list"][0]):
        if _defines(item["code"], name):
            return str(name)
    return None


def _mbpp_assert_plan(inp: ScoreInput) -> _Plan:
    item = inp.item
    code = extract_code(inp.output, mbpp_entry_point(item))
    tests = "\n".join([item.get("test_setup_code") or "", *item["test_list"]]) + "\n"
    return _single(code, Program(code, tests), MBPP_LIMITS)


_COMPARE = """
import base64 as _b64, copy as _copy, hashlib as _hashlib, math as _math, pickle as _pickle
_inputs = _pickle.loads(_b64.b64decode("{inputs}"))
_expected = _pickle.loads(_b64.b64decode("{expected}"))
_atol = {atol!r}
_n_base = {n_base}

def _is_floats(x):
    if isinstance(x, float):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(v, float) for v in x)

def _close(a, b, atol):
    if isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_close(x, y, atol) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    if _math.isnan(b):
        return _math.isnan(a)
    return abs(a - b) <= atol + 1e-07 * abs(b)

def _matches(out, exp):
    if isinstance(exp, tuple) and len(exp) == 2 and exp[0] == "{repr_tag}":
        return repr(out) == exp[1]
    if isinstance(exp, tuple) and len(exp) == 2 and exp[0] == "{digest_tag}":
        return _hashlib.sha256(repr(out).encode()).hexdigest() == exp[1]
    if out == exp:
        return True
    atol = 1e-06 if _atol == 0 and _is_floats(exp) else _atol
    return atol != 0 and type(out) is type(exp) and _close(out, exp, atol)

for _i, (_args, _exp) in enumerate(zip(_inputs, _expected)):
    _out = {entry}(*_copy.deepcopy(_args))
    _which = "base" if _i < _n_base else "plus"
    assert _matches(_out, _exp), (
        f"{{_which}} input #{{_i}}: {{repr(_args)[:200]}} -> {{repr(_out)[:200]}}, expected {{repr(_exp)[:200]}}"
    )
"""

_REFERENCE = """
import base64 as _b64, copy as _copy, hashlib as _hashlib, pickle as _pickle
_inputs = _pickle.loads(_b64.b64decode("{inputs}"))
_outs = [{entry}(*_copy.deepcopy(_args)) for _args in _inputs]

def _picklable(x):
    try:
        size = len(_pickle.dumps(x))
    except Exception:
        return ("{repr_tag}", repr(x))
    if size > {big}:
        return ("{digest_tag}", _hashlib.sha256(repr(x).encode()).hexdigest())
    return x

_outs = [_picklable(x) for x in _outs]
print("{mark}" + _b64.b64encode(_pickle.dumps(_outs)).decode())
"""


def _example_args(item: dict[str, Any]) -> list[Any]:
    """Literal arguments of the first call of the entry point in the prompt's example assert ([] if none)."""
    for line in item["prompt"].splitlines():
        if not line.startswith("assert") or item["entry_point"] not in line:
            continue
        try:
            tree = ast.parse(line)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == item["entry_point"]:
                args = []
                for arg in node.args:
                    try:
                        args.append(ast.literal_eval(arg))
                    except (ValueError, SyntaxError, TypeError):
                        args.append(None)
                return args
    return []


def _conform(value: Any, template: Any) -> Any:
    """`value` (decoded from JSON, so tuples and sets are lists and complex numbers strings) shaped like the
    example argument `template`."""
    if isinstance(value, str) and isinstance(template, int | float | complex) and not isinstance(template, bool):
        for kind in (int, float, complex):
            with contextlib.suppress(ValueError):
                return kind(value)
        return value
    if not isinstance(value, list) or not isinstance(template, tuple | list | set):
        return value
    items = list(template)
    if (
        isinstance(template, tuple)
        and len(items) == len(value)
        and all(isinstance(v, list) == isinstance(t, tuple | list | set) for v, t in zip(value, items, strict=True))
    ):
        return tuple(_conform(v, t) for v, t in zip(value, items, strict=True))
    nested = [t for t in items if isinstance(t, tuple | list | set)]
    flat = [t for t in items if not isinstance(t, tuple | list | set)]

    def element_template(v: Any) -> Any:
        if isinstance(v, list):
            return nested[0] if nested else template  # deeper than the example: nest like its parent
        return flat[0] if flat else None

    return type(template)(_conform(v, element_template(v)) for v in value)


def _plus_rows(item: dict[str, Any]) -> list[Any]:
    rows = item["plus_input"]
    return rows if isinstance(rows, list) else []  # Mbpp/793 stores {} for "no plus inputs"


def mbpp_plus_inputs(item: dict[str, Any], plus: bool = True) -> list[list[Any]]:
    """An MBPP+ task's argument lists (base, then plus if asked), with JSON lists turned back into the tuples
    and sets that the prompt's example call passes (EvalPlus does this with a per-task table)."""
    example = _example_args(item)
    rows = item["base_input"] + (_plus_rows(item) if plus else [])
    return [[_conform(v, example[i]) if i < len(example) else v for i, v in enumerate(args)] for args in rows]


def _b64pickle(value: Any) -> str:
    return base64.b64encode(pickle.dumps(value)).decode()


@dataclass(frozen=True)
class Reference:
    """Canonical outputs of an MBPP+ task on base + plus inputs (pickled, base64) and the sandbox run's duration."""

    expected_b64: str
    runtime_s: float
    error: str = ""  # why the canonical solution did not run (then every candidate fails with this reason)


_references: dict[str, Reference] = {}
_reference_lock = threading.Lock()


def _reference_key(item: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps([item["canonical_solution"], item["base_input"], item["plus_input"]]).encode()
    ).hexdigest()


def mbpp_plus_references(items: Sequence[dict[str, Any]]) -> list[Reference]:
    """Run the canonical solutions in the sandbox (in parallel) on all inputs; cached per (solution, inputs)."""
    keys = [_reference_key(item) for item in items]
    with _reference_lock:
        todo = {k: item for k, item in zip(keys, items, strict=True) if k not in _references}
    cap = 64 << 20
    limits = Limits(wall_s=120.0, memory_mb=8192, fsize_mb=cap >> 20, output_cap=cap)
    programs = [
        Program(item["canonical_solution"], _REFERENCE.format(
            inputs=_b64pickle(mbpp_plus_inputs(item)), entry=item["entry_point"], mark=_EXPECTED_MARK,
            repr_tag=_REPR_TAG,
            digest_tag=_DIGEST_TAG,
            big=_BIG,
        ))
        for item in todo.values()
    ]  # fmt: skip
    for (key, item), outcome in zip(todo.items(), default_sandbox().run_many(programs, limits), strict=True):
        if outcome.passed and _EXPECTED_MARK in outcome.stdout:
            expected = outcome.stdout.rsplit(_EXPECTED_MARK, 1)[1].strip()
            ref = Reference(expected, outcome.duration_s)  # the whole run: a candidate's run does the same work
        else:
            ref = Reference("", 0.0, f"the canonical solution failed: {_verdict(outcome)}")
            log.error("%s: %s", item["task_id"], ref.error)
        with _reference_lock:
            _references[key] = ref
    with _reference_lock:
        return [_references[k] for k in keys]


def mbpp_plus_program(item: dict[str, Any], code: str, plus: bool) -> tuple[Program, Limits]:
    """The program and limits that check `code` on an MBPP+ task's base (and, if `plus`, plus) inputs."""
    [ref] = mbpp_plus_references([item])
    if ref.error:
        return Program("", f"raise RuntimeError({ref.error!r})"), MBPP_LIMITS
    tests = _COMPARE.format(  # zip() in the test stops at the inputs: base-only runs ignore the plus outputs
        inputs=_b64pickle(mbpp_plus_inputs(item, plus)),
        expected=ref.expected_b64,
        atol=item["atol"],
        n_base=len(item["base_input"]),
        entry=item["entry_point"],
        repr_tag=_REPR_TAG,
        digest_tag=_DIGEST_TAG,
    )
    limits = MBPP_LIMITS.with_reference(ref.runtime_s, REFERENCE_FLOOR_S, REFERENCE_FACTOR)
    return Program(code, tests), limits


def _mbpp_plus_plan(inp: ScoreInput, suites: Sequence[bool]) -> _Plan:
    item = inp.item
    code = extract_code(inp.output, item["entry_point"])
    runs = [mbpp_plus_program(item, code, plus) for plus in suites]

    def combine(outcomes: list[Outcome]) -> Score:
        names = ["plus" if plus else "base" for plus in suites]
        reason = "; ".join(f"{n}: {_verdict(o)}" for n, o in zip(names, outcomes, strict=True))
        return Score(float(outcomes[0].passed), code, reason)

    return _Plan(code, runs, combine)


# --- scorers -------------------------------------------------------------------------------------------


def _plan(name: str, inp: ScoreInput) -> _Plan:
    if name == "humaneval":
        return _humaneval_plan(inp)
    is_plus = "plus_input" in inp.item
    if not is_plus:
        if name == "mbpp_plus":
            raise UsageError("scorer mbpp_plus needs MBPP+ (EvalPlus) rows, with plus_input")
        return _mbpp_assert_plan(inp)
    suites = {"mbpp": [False, True], "mbpp_base": [False], "mbpp_plus": [True]}[name]
    return _mbpp_plus_plan(inp, suites)


def _score(name: str, inp: ScoreInput) -> Score:
    plan = _plan(name, inp)
    return plan.combine([default_sandbox().run(p, lim) for p, lim in plan.runs])


@register("humaneval")
def score_humaneval(inp: ScoreInput) -> Score:
    """HumanEval pass (1.0) or fail (0.0) of the model's answer, with the failure in `reason`."""
    return _score("humaneval", inp)


@register("mbpp")
def score_mbpp(inp: ScoreInput) -> Score:
    """MBPP: original rows on their asserts; MBPP+ rows on base tests (value) and plus tests (in `reason`)."""
    return _score("mbpp", inp)


@register("mbpp_base")
def score_mbpp_base(inp: ScoreInput) -> Score:
    """MBPP+ base tests (EvalPlus "base"); original MBPP rows on their asserts."""
    return _score("mbpp_base", inp)


@register("mbpp_plus")
def score_mbpp_plus(inp: ScoreInput) -> Score:
    """MBPP+ base + plus tests (EvalPlus "plus")."""
    return _score("mbpp_plus", inp)


def score_many(inputs: Sequence[ScoreInput], scorer: str, workers: int | None = None) -> list[Score]:
    """Score many samples with code scorer `scorer`, running their programs in parallel on `workers` cores
    (default: all the sandbox's slots, one per core)."""
    plus_items = [inp.item for inp in inputs if "plus_input" in inp.item and scorer != "humaneval"]
    mbpp_plus_references(plus_items)  # computed in parallel up front, then cached
    plans = [_plan(scorer, inp) for inp in inputs]
    runs = [run for plan in plans for run in plan.runs]
    outcomes = default_sandbox().run_many([p for p, _ in runs], [lim for _, lim in runs], workers)
    scores, i = [], 0
    for plan in plans:
        scores.append(plan.combine(outcomes[i : i + len(plan.runs)]))
        i += len(plan.runs)
    return scores
