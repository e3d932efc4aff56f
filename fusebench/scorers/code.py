"""Code scorers: HumanEval, MBPP and MBPP+ (EvalPlus v0.1.0), run in fusebench's sandbox.

Verdicts are split (see fusebench.sandbox): the model's code runs in the sandboxed process and only answers calls;
the tests, the dataset's helper code and every comparison run in the judge, a separate process with no untrusted
code, which receives return values as plain data. So nothing the model's process does to itself (frames, gc, trace
hooks, module globals, descriptors, objects with an exotic `__eq__`, patched modules, redefined helpers) can bend
a verdict. Arguments are sent as copies: a call that changes its arguments is counted (`Outcome.mutated`) but the
change does not reach the tests.

- "humaneval": the program is the prompt followed by the model's code: a completion of the prompt's function,
  or a whole function (which then replaces the prompt's stub, keeping the prompt's imports and helpers);
  the judge runs the prompt (its helpers, e.g. `poly`), binds the entry point to the model's function and runs
  the row's `test` and `check(entry_point)`.
- "mbpp": original MBPP rows (`test_list`): the judge runs the row's `test_setup_code` and asserts, with the names
  they call in the model's code bound to it (standard-library modules they use are the judge's own). MBPP+ rows:
  the base tests as "mbpp_base"; the plus verdict is only reported in `Score.reason`.
- "mbpp_base" / "mbpp_plus": MBPP+ rows as EvalPlus scores them: the candidate's output on each input must
  equal the canonical solution's (floats within `atol`, 1e-6 when the row says 0, rtol 1e-7); "base" runs
  `base_input`, "plus" runs `base_input` + `plus_input`. Expected outputs come from running the canonical
  solution once per task (cached), as plain data, except where EvalPlus's special oracles decide
  (`EVALPLUS_ORACLES`: any value, 0 too, a corrected formula too, set equality, not-None). Not replicated from
  EvalPlus: its per-task input conversion table (the example call's shapes are followed instead, see
  `mbpp_plus_inputs`).

A task whose canonical solution does not pass split (a return value that is not plain data, such as a regex match,
or an output over the channel's cap) keeps the in-process mode, where the tests run in the model's process: its
scores say "in-process (why)" in the reason and `in_process_tasks()` lists them; never silently. Measured on the
bundled data: HumanEval 164 of 164 tasks split; MBPP+ 395 of 399 (Mbpp/737, 787 and 794 return regex matches,
which EvalPlus only checks for None; Mbpp/255 outputs too large for the channel); original MBPP 970 of 974 (367
and 927: the setup code needs the solution's class; 533 passes a type; 601 passes objects of a class). Of
HumanEval's canonical solutions three change their arguments (70, 120, 149); none of their tests looks at them
afterwards.

Time limits: HumanEval 6 s and MBPP 20 s wall-clock; MBPP+ max(4 s, 4 x the canonical run's duration).
"""

from __future__ import annotations

import ast
import base64
import builtins
import hashlib
import json
import logging
import pickle
import re
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fusebench.errors import UsageError
from fusebench.sandbox import Limits, Outcome, Program, default_sandbox
from fusebench.sandbox import _wire as wire
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


# --- programs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Sandbox runs for one sample, how their outcomes make its Score, and (when the task may need it) how to
    score it in-process instead."""

    extracted: str
    runs: list[tuple[Program, Limits]]
    combine: Callable[[list[Outcome]], Score]
    fallback: _Fallback | None = None


@dataclass(frozen=True)
class _Fallback:
    """The in-process plan of a sample, used only if its task's canonical solution passes in-process but not
    split (`canonical` split and in-process programs, under `limits`; the decision is cached under `key`)."""

    key: str
    canonical: tuple[Program, Program]
    limits: Limits
    plan: Callable[[], _Plan]


def _verdict(outcome: Outcome) -> str:
    if outcome.passed:
        return "passed"
    detail = f" [{outcome.failed_test}]" if outcome.failed_test else ""
    return f"{outcome.status}: {outcome.reason}{detail}"


def _single(code: str, program: Program, limits: Limits, label: str = "") -> _Plan:
    def combine(outcomes: list[Outcome]) -> Score:
        return Score(float(outcomes[0].passed), code, label + _verdict(outcomes[0]))

    return _Plan(code, [(program, limits)], combine)


def _task_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


# HumanEval+ rows (evalplus/humanevalplus) compare floats with numpy, which the sandbox (standard library only)
# lacks: their `import numpy as np` becomes this stand-in for the two functions they call, with numpy's defaults
# (element-wise |out - exp| <= atol + rtol * |exp|, same shapes, no broadcasting).
_NUMPY_IMPORT = re.compile(r"^import numpy as np[ \t]*$", re.M)
_NUMPY_STAND_IN = """
import math as _np_math


def _np_close(a, b, rtol, atol, equal_nan):
    if isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and len(a) == len(b) and all(
            _np_close(x, y, rtol, atol, equal_nan) for x, y in zip(a, b)
        )
    if isinstance(a, (list, tuple)):
        return False
    a, b = float(a), float(b)
    if _np_math.isnan(a) or _np_math.isnan(b):
        return equal_nan and _np_math.isnan(a) and _np_math.isnan(b)
    if _np_math.isinf(a) or _np_math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


class _np_testing:
    @staticmethod
    def assert_allclose(actual, desired, rtol=1e-07, atol=0, equal_nan=True, err_msg="", verbose=True):
        assert _np_close(actual, desired, rtol, atol, equal_nan), f"not close: {actual!r} vs {desired!r}"


class np:
    testing = _np_testing

    @staticmethod
    def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
        return _np_close(a, b, rtol, atol, equal_nan)
"""


def humaneval_program(item: dict[str, Any], completion: str, split: bool = True) -> Program:
    """The HumanEval program for a model answer: prompt + completion, or prompt + a whole function. Split: the
    judge runs the prompt (the dataset's helpers) and the tests, calling the entry point in the model's process."""
    entry = item["entry_point"]
    code = extract_code(completion, entry)
    body = item["prompt"] + "\n" + code if _defines(code, entry, top_level=True) else item["prompt"] + code
    test = _NUMPY_IMPORT.sub(lambda _: _NUMPY_STAND_IN, item["test"])
    tests = f"{test}\n\ncheck({entry})\n"
    if split:
        return Program(body, tests, calls=(entry,), helpers=item["prompt"])
    return Program(body, tests)


def _with_canonical(
    plan: _Plan, key: str, build: Callable[[str, bool], Program], answer: str, canonical: str, limits: Limits
) -> _Plan:
    """`plan` (split) with its in-process fallback, `build(answer, split=False)`, used only if the task's canonical
    solution cannot run split."""

    def in_process() -> _Plan:
        return _single(plan.extracted, build(answer, False), limits, _in_process_label(key))

    programs = (build(canonical, True), build(canonical, False))
    return replace(plan, fallback=_Fallback(key, programs, limits, in_process))


def _humaneval_plan(inp: ScoreInput) -> _Plan:
    item = inp.item
    code = extract_code(inp.output, item["entry_point"])
    plan = _single(code, humaneval_program(item, inp.output), HUMANEVAL_LIMITS)
    if "canonical_solution" not in item:
        return plan

    def build(answer: str, split: bool) -> Program:
        return humaneval_program(item, answer, split)

    key = _task_key("humaneval", item["prompt"], item["test"], item["canonical_solution"])
    return _with_canonical(plan, key, build, inp.output, item["canonical_solution"], HUMANEVAL_LIMITS)


def mbpp_entry_point(item: dict[str, Any]) -> str | None:
    """The function an original MBPP row tests: the first name called in its first assert that its code defines."""
    for name in re.findall(r"(\w+)\s*\(", item["test_list"][0]):
        if _defines(item["code"], name):
            return str(name)
    return None


def _free_names(setup: str, tests: str) -> tuple[list[str], list[str]]:
    """Names the tests use but neither they nor the setup define, nor builtins: (standard-library modules,
    the rest, which the model's code must define)."""
    tree = ast.parse(setup + "\n" + tests)
    used: list[str] = []
    defined: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            used.append(node.id)
        elif isinstance(node, ast.Name):
            defined.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
    free = [n for n in dict.fromkeys(used) if n not in defined and not hasattr(builtins, n)]
    modules = [n for n in free if n in sys.stdlib_module_names]
    return modules, [n for n in free if n not in modules]


def mbpp_program(item: dict[str, Any], code: str, split: bool = True) -> Program:
    """An original MBPP row's program: its setup code and asserts, run in the judge (split) or after the code."""
    setup = item.get("test_setup_code") or ""
    asserts = "\n".join(item["test_list"]) + "\n"
    if not split:
        return Program(code, setup + "\n" + asserts)
    modules, calls = _free_names(setup, asserts)
    entry = mbpp_entry_point(item)
    if entry and entry not in calls and hasattr(builtins, entry):  # e.g. a task whose function is named `sum`
        calls.append(entry)
    helpers = "".join(f"import {m}\n" for m in modules) + setup
    return Program(code, asserts, calls=tuple(calls), helpers=helpers)


def _mbpp_assert_plan(inp: ScoreInput) -> _Plan:
    item = inp.item
    code = extract_code(inp.output, mbpp_entry_point(item))
    plan = _single(code, mbpp_program(item, code), MBPP_LIMITS)

    def build(answer: str, split: bool) -> Program:
        return mbpp_program(item, answer, split)

    key = _task_key("mbpp", item["code"], item.get("test_setup_code") or "", item["test_list"])
    return _with_canonical(plan, key, build, code, item["code"], MBPP_LIMITS)


# MBPP+ in the judge: inputs and expected outputs are plain data embedded in the tests.
_MATCHES = """
import math as _math

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

def _surface_area(base_edge, height):
    slant = _math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant) / 2)

def _digit_distance(a, b):
    x, y = str(a), str(b)
    width = max(len(x), len(y))
    return sum(abs(int(p) - int(q)) for p, q in zip(x.zfill(width), y.zfill(width)))

def _plain_matches(out, exp, atol_row, args=(), oracle=""):
    if oracle == "not_none":
        exact = out == exp if isinstance(out, bool) else exp == (out is not None)
    elif oracle == "set_eq":
        exact = set(out) == set(exp)
    else:
        exact = out == exp
        if oracle == "any_value":
            exact = True
        elif oracle == "or_zero":
            exact = exact or out == 0
        elif oracle == "surface_area":
            exact = exact or abs(out - _surface_area(*args)) <= atol_row
        elif oracle == "digit_distance":
            exact = exact or out == _digit_distance(*args)
    if exact:
        return True
    atol = 1e-06 if atol_row == 0 and _is_floats(exp) else atol_row
    return atol != 0 and type(out) is type(exp) and _close(out, exp, atol)
"""

_COMPARE_SPLIT = (
    _MATCHES
    + """
_inputs = _fb.loads({inputs!r})
_expected = _fb.loads({expected!r})
for _i, (_args, _exp) in enumerate(zip(_inputs, _expected)):
    _out = {entry}(*_args)
    _which = "base" if _i < {n_base} else "plus"
    assert _plain_matches(_out, _exp, {atol!r}, _args, {oracle!r}), (
        f"{{_which}} input #{{_i}}: {{repr(_args)[:200]}} -> {{repr(_out)[:200]}}, expected {{repr(_exp)[:200]}}"
    )
"""
)

_REFERENCE_SPLIT = """
for _args in _fb.loads({inputs!r}):
    _fb.record({entry}(*_args))
"""

# MBPP+ in-process (tasks whose canonical outputs are not plain data): pickled, only unpickled in the sandbox.
_COMPARE = (
    """
import base64 as _b64, copy as _copy, hashlib as _hashlib, math as _math, pickle as _pickle
_inputs = _pickle.loads(_b64.b64decode("{inputs}"))
_expected = _pickle.loads(_b64.b64decode("{expected}"))
_atol = {atol!r}
_oracle = {oracle!r}
_n_base = {n_base}
"""
    + _MATCHES
    + """
def _matches(out, exp, args):
    if isinstance(exp, tuple) and len(exp) == 2 and exp[0] == "{repr_tag}":
        return repr(out) == exp[1]
    if isinstance(exp, tuple) and len(exp) == 2 and exp[0] == "{digest_tag}":
        return _hashlib.sha256(repr(out).encode()).hexdigest() == exp[1]
    return _plain_matches(out, exp, _atol, args, _oracle)

for _i, (_args, _exp) in enumerate(zip(_inputs, _expected)):
    _out = {entry}(*_copy.deepcopy(_args))
    _which = "base" if _i < _n_base else "plus"
    assert _matches(_out, _exp, _args), (
        f"{{_which}} input #{{_i}}: {{repr(_args)[:200]}} -> {{repr(_out)[:200]}}, expected {{repr(_exp)[:200]}}"
    )
"""
)

_REFERENCE = """
import base64 as _b64, copy as _copy, hashlib as _hashlib, pickle as _pickle
_inputs = _pickle.loads(_b64.b64decode("{inputs}"))
_outs = [{entry}(*_copy.deepcopy(_args)) for _args in _inputs]
if {not_none}:
    _outs = [x is not None for x in _outs]

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
    """`value` (decoded from JSON, so tuples and sets are lists) shaped like the example argument `template`.
    Strings stay strings: a string among numbers is test data (Mbpp/222 passes (1, 2, '4'))."""
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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | complex) and not isinstance(value, bool)


def _number_kind(rows: Sequence[Sequence[Any]], position: int) -> type | None:
    """complex or float when the file stores this argument as numeric strings (JSON has no complex numbers:
    EvalPlus writes Mbpp/124's and 252's arguments with str() and reads them back with float()/complex());
    None when any value there is neither a number nor such a string."""
    values = [args[position] for args in rows if position < len(args)]
    strings = [v for v in values if isinstance(v, str)]
    if not strings or not all(_is_number(v) or isinstance(v, str) for v in values):
        return None
    kind: type = complex if any("j" in v.lower() for v in strings) else float
    for text in strings:
        try:
            kind(text)
        except ValueError:
            return None
    return kind


def mbpp_plus_inputs(item: dict[str, Any], plus: bool = True) -> list[list[Any]]:
    """An MBPP+ task's argument lists (base, then plus if asked), with JSON lists turned back into the tuples
    and sets that the prompt's example call passes (EvalPlus does this with a per-task table), and an argument
    stored as numeric strings where the example passes a number read back as numbers."""
    example = _example_args(item)
    rows = item["base_input"] + (_plus_rows(item) if plus else [])
    kinds = [_number_kind(rows, i) if _is_number(template) else None for i, template in enumerate(example)]

    def decode(position: int, value: Any) -> Any:
        if position >= len(example):
            return value
        kind = kinds[position]
        return kind(value) if kind is not None else _conform(value, example[position])

    return [[decode(i, v) for i, v in enumerate(args)] for args in rows]


def _b64pickle(value: Any) -> str:
    return base64.b64encode(pickle.dumps(value)).decode()


@dataclass(frozen=True)
class Reference:
    """Canonical outputs of an MBPP+ task on base + plus inputs and the sandbox run's duration. Split: tagged JSON
    text of plain data; in-process (outputs that are not plain data): pickled, base64."""

    expected: str
    runtime_s: float
    error: str = ""  # why the canonical solution did not run (then every candidate fails with this reason)
    mode: str = "split"
    why: str = ""  # why the task runs in-process


_references: dict[str, Reference] = {}
_reference_lock = threading.Lock()
_REFERENCE_LIMITS = Limits(wall_s=120.0, memory_mb=8192, fsize_mb=64, output_cap=64 << 20)


# EvalPlus's special oracles (evalplus/eval/__init__.py `unsafe_execute`, eval/_special_oracle.py), keyed as there
# by the MBPP+ entry point: these tasks' outputs are not (only) compared with the canonical solution's by equality.
EVALPLUS_ORACLES: dict[str, str] = {
    "are_equivalent": "any_value",  # Mbpp/164: any returned value
    "sum_div": "or_zero",  # Mbpp/295: 0 too
    "surface_Area": "surface_area",  # Mbpp/581: also the area from the pyramid's perpendicular height
    "digit_distance_nums": "digit_distance",  # Mbpp/558: also the digits of zero-padded numbers
    **dict.fromkeys(
        (
            "similar_elements",
            "find_char_long",
            "common_in_nested_lists",
            "extract_singly",
            "larg_nnum",
            "intersection_array",
            "find_dissimilar",
            "Diff",
        ),
        "set_eq",
    ),  # compared as sets
    # a regex match: whether it is None (a bool answer is compared with that)
    **dict.fromkeys(("check_str", "text_match_three", "text_starta_endb"), "not_none"),
}
_NOT_NONE_WHY = "EvalPlus checks only whether its output is None; the output stays in the model's process"


def _oracle(item: dict[str, Any]) -> str:
    return EVALPLUS_ORACLES.get(item["entry_point"], "")


def _reference_key(item: dict[str, Any]) -> str:
    return _task_key(item["canonical_solution"], item["base_input"], item["plus_input"])


def _reference_in_process(item: dict[str, Any]) -> Program:
    return Program(item["canonical_solution"], _REFERENCE.format(
        inputs=_b64pickle(mbpp_plus_inputs(item)), entry=item["entry_point"], mark=_EXPECTED_MARK,
        repr_tag=_REPR_TAG, digest_tag=_DIGEST_TAG, big=_BIG, not_none=_oracle(item) == "not_none",
    ))  # fmt: skip


def _reference_split(item: dict[str, Any]) -> Program:
    tests = _REFERENCE_SPLIT.format(inputs=wire.dumps(mbpp_plus_inputs(item)), entry=item["entry_point"])
    return Program(item["canonical_solution"], tests, calls=(item["entry_point"],))


def mbpp_plus_references(items: Sequence[dict[str, Any]]) -> list[Reference]:
    """Run the canonical solutions (in parallel, split; in-process for those whose outputs are not plain data or
    only checked for None) on all inputs; cached per (solution, inputs)."""
    keys = [_reference_key(item) for item in items]
    with _reference_lock:
        todo = {k: item for k, item in zip(keys, items, strict=True) if k not in _references}
    sandbox = default_sandbox()
    done: dict[str, Reference] = {}
    why = {k: _NOT_NONE_WHY for k, item in todo.items() if _oracle(item) == "not_none"}
    tried = {k: item for k, item in todo.items() if k not in why}
    split = sandbox.run_many([_reference_split(item) for item in tried.values()], _REFERENCE_LIMITS)
    for key, outcome in zip(tried, split, strict=True):
        if outcome.passed:  # the whole run: a candidate's run does the same work
            done[key] = Reference(outcome.records, outcome.duration_s)
        else:
            why[key] = _verdict(outcome)
    rest = {k: item for k, item in todo.items() if k not in done}
    programs = [_reference_in_process(item) for item in rest.values()]
    for (key, item), outcome in zip(rest.items(), sandbox.run_many(programs, _REFERENCE_LIMITS), strict=True):
        if outcome.passed and _EXPECTED_MARK in outcome.stdout:
            expected = outcome.stdout.rsplit(_EXPECTED_MARK, 1)[1].strip()
            done[key] = Reference(expected, outcome.duration_s, mode="in-process", why=why[key])
            log.warning("%s runs in-process (%s)", item["task_id"], why[key])
        else:
            done[key] = Reference("", 0.0, f"the canonical solution failed: {_verdict(outcome)}")
            log.error("%s: %s", item["task_id"], done[key].error)
    with _reference_lock:
        _references.update(done)
        return [_references[k] for k in keys]


def mbpp_plus_program(item: dict[str, Any], code: str, plus: bool) -> tuple[Program, Limits]:
    """The program and limits that check `code` on an MBPP+ task's base (and, if `plus`, plus) inputs."""
    [ref] = mbpp_plus_references([item])
    if ref.error:
        return Program("", f"raise RuntimeError({ref.error!r})"), MBPP_LIMITS
    limits = MBPP_LIMITS.with_reference(ref.runtime_s, REFERENCE_FLOOR_S, REFERENCE_FACTOR)
    inputs = mbpp_plus_inputs(item, plus)
    n_base, entry = len(item["base_input"]), item["entry_point"]
    if ref.mode == "split":  # zip() in the tests stops at the inputs: base-only runs ignore the plus outputs
        tests = _COMPARE_SPLIT.format(
            inputs=wire.dumps(inputs),
            expected=ref.expected,
            atol=item["atol"],
            n_base=n_base,
            entry=entry,
            oracle=_oracle(item),
        )
        return Program(code, tests, calls=(entry,)), limits
    tests = _COMPARE.format(
        inputs=_b64pickle(inputs), expected=ref.expected, atol=item["atol"], n_base=n_base, entry=entry,
        repr_tag=_REPR_TAG, digest_tag=_DIGEST_TAG, oracle=_oracle(item),
    )  # fmt: skip
    return Program(code, tests), limits


def _mbpp_plus_plan(inp: ScoreInput, suites: Sequence[bool]) -> _Plan:
    item = inp.item
    code = extract_code(inp.output, item["entry_point"])
    runs = [mbpp_plus_program(item, code, plus) for plus in suites]
    [ref] = mbpp_plus_references([item])
    label = f"in-process ({ref.why}): " if ref.mode == "in-process" else ""

    def combine(outcomes: list[Outcome]) -> Score:
        names = ["plus" if plus else "base" for plus in suites]
        reason = "; ".join(f"{n}: {_verdict(o)}" for n, o in zip(names, outcomes, strict=True))
        return Score(float(outcomes[0].passed), code, label + reason)

    return _Plan(code, runs, combine)


# --- in-process fallback -------------------------------------------------------------------------------

_modes: dict[str, str] = {}  # task key -> "" (split) or why the task runs in-process
_mode_lock = threading.Lock()


def _in_process_label(key: str) -> str:
    return f"in-process ({_modes.get(key, '')}): "


def _decide_modes(fallbacks: Sequence[_Fallback]) -> None:
    """For the tasks not decided yet: run the canonical solution split; a task whose canonical solution fails
    split but passes in-process runs in-process (see the module docstring)."""
    with _mode_lock:
        todo = {f.key: f for f in fallbacks if f.key not in _modes}
    if not todo:
        return
    sandbox = default_sandbox()
    split = sandbox.run_many([f.canonical[0] for f in todo.values()], [f.limits for f in todo.values()])
    failing = [key for key, outcome in zip(todo, split, strict=True) if not outcome.passed]
    in_process = sandbox.run_many([todo[k].canonical[1] for k in failing], [todo[k].limits for k in failing])
    decided = {key: "" for key in todo}
    why = dict(zip(todo, split, strict=True))
    for key, outcome in zip(failing, in_process, strict=True):
        if outcome.passed:
            decided[key] = f"its canonical solution fails split: {_verdict(why[key])}"[:300]
            log.warning("a task runs in-process: %s", decided[key])
    with _mode_lock:
        _modes.update(decided)


def in_process_tasks() -> dict[str, str]:
    """Task keys decided so far that run in-process, with why (MBPP+ tasks included)."""
    with _mode_lock, _reference_lock:
        out = {k: why for k, why in _modes.items() if why}
        out.update({k: r.why for k, r in _references.items() if r.mode == "in-process"})
        return out


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


def _run_plans(plans: Sequence[_Plan], workers: int | None) -> list[Score]:
    runs = [run for plan in plans for run in plan.runs]
    outcomes = default_sandbox().run_many([p for p, _ in runs], [lim for _, lim in runs], workers)
    scores, i = [], 0
    for plan in plans:
        scores.append(plan.combine(outcomes[i : i + len(plan.runs)]))
        i += len(plan.runs)
    return scores


def score_many(inputs: Sequence[ScoreInput], scorer: str, workers: int | None = None) -> list[Score]:
    """Score many samples with code scorer `scorer`, running their programs in parallel on `workers` cores
    (default: all the sandbox's slots, one per core). A sample that fails split is scored again in-process only
    when its task's canonical solution cannot run split (decided once per task, from trusted code only)."""
    plus_items = [inp.item for inp in inputs if "plus_input" in inp.item and scorer != "humaneval"]
    mbpp_plus_references(plus_items)  # computed in parallel up front, then cached
    plans = [_plan(scorer, inp) for inp in inputs]
    scores = _run_plans(plans, workers)
    failed = {i: p.fallback for i, (p, s) in enumerate(zip(plans, scores, strict=True)) if s.value < 1 and p.fallback}
    _decide_modes(list(failed.values()))
    with _mode_lock:
        retry = {i: f for i, f in failed.items() if _modes.get(f.key)}
    for i, score in zip(retry, _run_plans([f.plan() for f in retry.values()], workers), strict=True):
        scores[i] = score
    return scores


def _score(name: str, inp: ScoreInput) -> Score:
    return score_many([inp], name, workers=1)[0]


@register("humaneval", parallel=True)  # sandboxed runs wait on subprocesses
def score_humaneval(inp: ScoreInput) -> Score:
    """HumanEval pass (1.0) or fail (0.0) of the model's answer, with the failure in `reason`."""
    return _score("humaneval", inp)


@register("mbpp", parallel=True)  # sandboxed runs wait on subprocesses
def score_mbpp(inp: ScoreInput) -> Score:
    """MBPP: original rows on their asserts; MBPP+ rows on base tests (value) and plus tests (in `reason`)."""
    return _score("mbpp", inp)


@register("mbpp_base", parallel=True)  # sandboxed runs wait on subprocesses
def score_mbpp_base(inp: ScoreInput) -> Score:
    """MBPP+ base tests (EvalPlus "base"); original MBPP rows on their asserts."""
    return _score("mbpp_base", inp)


@register("mbpp_plus", parallel=True)  # sandboxed runs wait on subprocesses
def score_mbpp_plus(inp: ScoreInput) -> Score:
    """MBPP+ base + plus tests (EvalPlus "plus")."""
    return _score("mbpp_plus", inp)
