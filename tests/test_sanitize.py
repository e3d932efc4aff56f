"""The EvalPlus-style sanitizer and the answer modes a scorer sees (scorers/sanitize.py)."""

from __future__ import annotations

import ast
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from fusebench.scorers.base import ScoreInput, get_scorer
from fusebench.scorers.sanitize import answer_text, evalplus_solution, longest_parsing_block, sanitize
from fusebench.spec import get_benchmark

CHATTY = '''Sure! Here is the solution:

import math
from typing import List


def _unused_helper():
    return 0


def helper(x: float) -> float:
    return math.sqrt(x)


SCALE = 2


def closest(xs: List[float]) -> float:
    """Smallest root, scaled."""
    return min(helper(x) for x in xs) * SCALE


def closest(xs):
    return 0


print(closest([4.0, 9.0]))
assert closest([1.0]) == 2
if __name__ == "__main__":
    closest([])
This works because sqrt is monotonic.
'''


def test_sanitize_keeps_imports_and_what_the_entry_point_reaches() -> None:
    out = sanitize(CHATTY, "closest")
    assert out.splitlines()[:2] == ["import math", "from typing import List"]
    tree = ast.parse(out)
    defined = [getattr(s, "name", None) or s.targets[0].id for s in tree.body[2:]]  # type: ignore[attr-defined]
    assert defined == ["helper", "SCALE", "closest"]  # in source order; the first `closest` wins
    assert "min(helper(x)" in out and "return 0" not in out and "print(" not in out and "__main__" not in out


def test_sanitize_drops_functions_without_return_and_decorated_ones() -> None:
    code = (
        "import functools\n\n@functools.cache\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\n"
        "def log(x):\n    print(x)\n\ndef f(n):\n    log(n)\n    return fib(n)\n"
    )
    out = sanitize(code, "f")
    assert "def f(n)" in out and "def fib" not in out and "def log" not in out  # as evalplus.sanitize does
    assert out.startswith("import functools\n")


def test_sanitize_keeps_classes_and_names_used_only_in_attributes_or_fstrings() -> None:
    code = "class Box:\n    size = 3\n\nWIDTH = 4\n\ndef area():\n    return f'{WIDTH}' + str(Box.size)\n"
    assert sanitize(code, "area") == code.replace("\n\n", "\n").rstrip("\n")


def test_longest_parsing_block_follows_evalplus_line_rules() -> None:
    assert longest_parsing_block("x = 1") == "x = 1"  # a run is at least two lines: without one, the first line
    assert sanitize("import os", "f") == "import os"
    assert longest_parsing_block("x = 1\n") == "x = 1\n"
    text = "Here it is:\ndef f():\n    return 1\n\n\nThat is all, folks!"
    assert longest_parsing_block(text) == "def f():\n    return 1"
    assert longest_parsing_block("no code here\nat all, really!") == "no code here"


def test_sanitize_without_anything_to_keep_returns_the_longest_parsing_run() -> None:
    assert sanitize("def f(:\n  return (", "f") == "def f(:"  # nothing parses: the first line, as EvalPlus
    assert sanitize("Here:\nprint(1)\nprint(2)\n", "f") == "print(1)\nprint(2)"


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, set[str]]:
    """A chatty answer with functions f0..fn calling each other at random; f0 is the entry point."""
    n = draw(st.integers(min_value=1, max_value=7))
    calls = {i: draw(st.sets(st.integers(min_value=0, max_value=n - 1), max_size=3)) for i in range(n)}
    body = []
    for i in range(n):
        used = " + ".join(f"f{j}(0)" for j in sorted(calls[i]) if j > i) or "0"  # later ones only: no recursion
        body.append(f"def f{i}(x):\n    y = x\n    return y + {used}\n")
    reach = _reachable(body)
    prose = draw(st.sampled_from(["", "Here you go:\n", "Sure, the code:\n\n"]))
    tail = draw(st.sampled_from(["", "\nprint(f0(1))\n", "\nThis solves it.\n"]))
    return prose + "import os\n" + "\n".join(body) + tail, reach


def _reachable(body: list[str]) -> set[str]:
    """Oracle: names reachable from f0 by reading each definition's calls."""
    calls = {}
    for i, definition in enumerate(body):
        terms = definition.split("return ")[1].strip().split(" + ")
        calls[f"f{i}"] = {t.split("(")[0] for t in terms if t.startswith("f")}
    seen, todo = {"f0"}, ["f0"]
    while todo:
        for name in calls.get(todo.pop(), set()):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


@settings(max_examples=60, deadline=None)
@given(programs())
def test_sanitize_keeps_exactly_the_reachable_functions(program: tuple[str, set[str]]) -> None:
    text, reach = program
    out = sanitize(text, "f0")
    tree = ast.parse(out)
    assert {s.name for s in tree.body if isinstance(s, ast.FunctionDef)} == reach
    assert isinstance(tree.body[0], ast.Import)


def test_answer_modes() -> None:
    humaneval = get_benchmark("humaneval")
    row = {"entry_point": "f"}
    completion = "def f():\n\treturn 1\n```\nprint(f())\n```"
    assert evalplus_solution(completion) == "def f():\n    return 1\n"
    assert answer_text(get_benchmark("humaneval_raw"), row, completion) == "def f():\n    return 1\n"
    assert answer_text(humaneval, row, "x = 1\n" + completion) == "def f():\n    return 1"
    as_completion = replace(humaneval, answer="completion")
    assert answer_text(as_completion, row, completion) == humaneval.prompt.prefill + completion
    assert answer_text(get_benchmark("gsm8k"), {}, "42") == "42"


def test_sanitized_and_raw_answers_score_through_the_code_scorer() -> None:
    from fusebench.data import load_items

    item = load_items(get_benchmark("humaneval"), limit=1).items[0]  # has_close_elements
    answer = (
        "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n\n\n"
        "print(has_close_elements([1.0, 2.0], 0.5)"  # a truncated example line: raw fails, sanitized passes
    )
    scorer = get_scorer("humaneval")
    scores = {
        mode: scorer(ScoreInput(answer_text(get_benchmark(mode), item.row, answer), item.target, item.row)).value
        for mode in ("humaneval", "humaneval_raw")
    }
    assert scores == {"humaneval": 1.0, "humaneval_raw": 0.0}
