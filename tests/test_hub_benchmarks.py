"""MMLU-redux, GPQA-Diamond and LiveCodeBench: the real specs, preparers and loaders on FIXTURES.

The three datasets live only on the hub; here the hub calls (`datasets.load_dataset`, `hf_hub_download`) are
replaced by readers of tests/fixtures/, which hold invented rows in the datasets' real schemas (see its README).
The LiveCodeBench scorer runs for real in the sandbox.
"""

from __future__ import annotations

import base64
import collections
import csv
import dataclasses
import json
import pickle
import zlib
from pathlib import Path
from typing import Any

import datasets
import huggingface_hub
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fusebench.scorers.livecodebench as lcb
from fusebench.backends.base import GenParams
from fusebench.data import load_items
from fusebench.errors import UsageError
from fusebench.preparers import GPQA_ANSWERS, decode_tests, mmlu_redux_gold, prepare_gpqa
from fusebench.prompts import build_conversation
from fusebench.scorers.base import ScoreInput
from fusebench.scorers.choice import LETTERS, score_choice
from fusebench.scoring import score_benchmark
from fusebench.spec import BenchmarkSpec, get_benchmark

FIXTURES = Path(__file__).parent / "fixtures"
F = "```"


def with_options(spec: BenchmarkSpec, **options: Any) -> BenchmarkSpec:
    data = dataclasses.replace(spec.data, options={**spec.data.options, **options})
    return dataclasses.replace(spec, data=data)


@pytest.fixture
def hub_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Serve the fixtures in place of the hub; record every call."""
    calls: list[tuple[Any, ...]] = []

    def load_dataset(path: str, name: str | None = None, *, split: str, revision: str) -> list[dict[str, Any]]:
        calls.append((path, name, split, revision))
        if path == "edinburgh-dawg/mmlu-redux":
            file = FIXTURES / "mmlu_redux" / f"{name}.jsonl"
            return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []
        if path == "Idavidrein/gpqa":
            with (FIXTURES / "gpqa" / f"{name}.csv").open(newline="") as fh:
                return list(csv.DictReader(fh))
        raise AssertionError(f"unexpected dataset {path}")

    def hf_hub_download(repo_id: str, filename: str, *, repo_type: str, revision: str) -> str:
        calls.append((repo_id, filename, repo_type, revision))
        return str(FIXTURES / "livecodebench" / filename)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    return calls


# --- MMLU-redux ----------------------------------------------------------------------------------------


def test_mmlu_redux_reads_all_30_subjects_of_mmlu_redux_at_the_pinned_revision(hub_calls: list[Any]) -> None:
    spec = get_benchmark("mmlu_redux")
    data = load_items(spec)
    assert spec.data.hub is not None and spec.data.hub.id == "edinburgh-dawg/mmlu-redux"  # not the original MMLU
    configs = [name for _, name, _, _ in hub_calls]
    assert len(configs) == 30 == len(set(configs)) and "anatomy" in configs and "virology" in configs
    assert {(path, split, rev) for path, _, split, rev in hub_calls} == {
        ("edinburgh-dawg/mmlu-redux", "test", spec.data.hub.revision)
    }
    assert data.source == f"hf://edinburgh-dawg/mmlu-redux@{spec.data.hub.revision}"
    assert data.checksum == spec.data.hub.revision


def test_mmlu_redux_excludes_flagged_items_and_maps_the_answer_index_to_a_letter(hub_calls: list[Any]) -> None:
    items = load_items(get_benchmark("mmlu_redux")).items
    # anatomy: ok (index 2), wrong_groundtruth corrected to "A", bad_question_clarity (dropped);
    # virology: ok (index 0), wrong_groundtruth without a letter (dropped), expert (dropped)
    assert [(i.id, i.target) for i in items] == [("anatomy/0", "C"), ("anatomy/1", "A"), ("virology/0", "A")]
    assert [i.row["subject"] for i in items] == ["anatomy", "anatomy", "virology"]
    assert items[0].row["options"] == items[0].row["choices"]
    assert items[0].input.startswith("Which invented bone")


def test_mmlu_redux_without_corrections_keeps_only_ok_items(hub_calls: list[Any]) -> None:
    spec = with_options(get_benchmark("mmlu_redux"), corrected_groundtruth=False)
    assert [(i.id, i.target) for i in load_items(spec).items] == [("anatomy/0", "C"), ("virology/0", "A")]


def test_mmlu_redux_prompt_scoring_and_subject_breakdown(hub_calls: list[Any]) -> None:
    spec = get_benchmark("mmlu_redux")
    items = load_items(spec).items
    user = build_conversation(spec.prompt, items[0])[-1]["content"]
    assert "A. Femurix" in user and "C. Humeral test bone" in user
    outputs = ["The answer is (C)", "The answer is (B)", "The answer is (A)"]
    result = score_benchmark(spec, items, outputs)
    assert [s.value for s in result.scores] == [1.0, 0.0, 1.0]
    assert result.details["breakdown"] == {"anatomy": {"n": 2, "score": 50.0}, "virology": {"n": 1, "score": 100.0}}


@given(st.integers(0, 3), st.sampled_from(["bad_question_clarity", "bad_options_clarity", "no_correct_answer",
                                            "multiple_correct_answers", "expert"]), st.booleans())  # fmt: skip
def test_mmlu_redux_gold_rule(index: int, flagged: str, corrected: bool) -> None:
    assert mmlu_redux_gold({"error_type": "ok", "answer": index}, corrected) == LETTERS[index]
    assert mmlu_redux_gold({"error_type": flagged, "answer": index, "correct_answer": "B"}, corrected) is None
    fixed = {"error_type": "wrong_groundtruth", "answer": index, "correct_answer": LETTERS[3 - index]}
    assert mmlu_redux_gold(fixed, corrected) == (LETTERS[3 - index] if corrected else None)
    assert mmlu_redux_gold({**fixed, "correct_answer": "Paris"}, corrected) is None


# --- GPQA-Diamond --------------------------------------------------------------------------------------


def test_gpqa_loads_the_pinned_diamond_config(hub_calls: list[Any]) -> None:
    spec = get_benchmark("gpqa_diamond")
    items = load_items(spec).items
    assert spec.data.hub is not None
    assert hub_calls == [("Idavidrein/gpqa", "gpqa_diamond", "train", spec.data.hub.revision)]
    assert [i.id for i in items] == ["recFixture0001", "recFixture0002", "recFixture0003", "recFixture0004"]


def test_gpqa_gold_letter_follows_the_correct_answer(hub_calls: list[Any]) -> None:
    for item in load_items(get_benchmark("gpqa_diamond")).items:
        options = item.row["options"]
        answers = [str(item.row[name]).strip() for name in GPQA_ANSWERS]
        assert sorted(options) == sorted(answers)  # stripped ("4 " -> "4", "9\n" -> "9")
        assert options[LETTERS.index(item.target)] == answers[0]


def test_gpqa_shuffle_is_deterministic_per_seed_and_item(hub_calls: list[Any]) -> None:
    spec = get_benchmark("gpqa_diamond")
    assert spec.data.options["shuffle_seed"] == 0  # in the spec, hence in its version and the prompts' cache keys
    orders: dict[int, list[tuple[str, ...]]] = {}
    for seed in (0, 0, 1):
        items = load_items(with_options(spec, shuffle_seed=seed)).items
        order = [tuple(i.row["options"]) for i in items]
        assert orders.setdefault(seed, order) == order
    assert orders[0] != orders[1]
    first = load_items(spec).items
    assert len({i.target for i in first}) > 1  # the correct answer does not always land on the same letter


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31), st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6, unique=True))
def test_gpqa_shuffle_property(seed: int, ids: list[str]) -> None:
    rows = [
        {"Record ID": rid, "Question": "q", **{n: f"{k}:{rid!r}" for k, n in enumerate(GPQA_ANSWERS)}} for rid in ids
    ]
    spec = with_options(get_benchmark("gpqa_diamond"), shuffle_seed=seed)
    once, again = prepare_gpqa(rows, spec), prepare_gpqa(list(reversed(rows)), spec)
    by_id = {r["Record ID"]: r for r in again}
    for row in once:
        assert row["options"][LETTERS.index(row["gold"])] == f"0:{row['Record ID']!r}"
        assert row["options"] == by_id[row["Record ID"]]["options"]  # depends on (seed, id), not on row order


def test_gpqa_domain_breakdown_and_scoring(hub_calls: list[Any]) -> None:
    spec = get_benchmark("gpqa_diamond")
    items = load_items(spec).items
    assert spec.breakdown_field == "High-level domain"
    wrong = {t: LETTERS[(LETTERS.index(t) + 1) % 4] for t in "ABCD"}
    outputs = [
        f"The answer is ({i.target if i.row['High-level domain'] == 'Physics' else wrong[i.target]})" for i in items
    ]
    result = score_benchmark(spec, items, outputs)
    assert result.details["breakdown"] == {
        "Biology": {"n": 1, "score": 0.0},
        "Chemistry": {"n": 1, "score": 0.0},
        "Physics": {"n": 2, "score": 100.0},
    }
    assert score_choice(ScoreInput("The answer is (E)", items[0].target, items[0].row)).value == 0.0


def test_gpqa_needs_an_integer_seed(hub_calls: list[Any]) -> None:
    with pytest.raises(UsageError, match="shuffle_seed"):
        load_items(with_options(get_benchmark("gpqa_diamond"), shuffle_seed=None))


# --- LiveCodeBench -------------------------------------------------------------------------------------


def _packed(value: Any) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(value))).decode()


def test_livecodebench_reads_release_files_at_the_pinned_revision_and_filters_by_date(hub_calls: list[Any]) -> None:
    spec = get_benchmark("livecodebench")
    data = load_items(spec)
    assert spec.data.hub is not None
    rev = spec.data.hub.revision
    assert hub_calls == [
        ("livecodebench/code_generation_lite", "test4.jsonl", "dataset", rev),
        ("livecodebench/code_generation_lite", "test5.jsonl", "dataset", rev),
    ]
    # 2024-07-20 and 2024-12-01 fall outside 2024-08-01..2024-11-30; both boundary days are in
    assert [i.id for i in data.items] == ["abc901_b", "3400", "abc910_c"]
    narrow = with_options(spec, start_date="2024-10-01", end_date="2024-10-31")
    assert [i.id for i in load_items(narrow).items] == ["3400"]


def test_livecodebench_decodes_public_and_private_tests(hub_calls: list[Any]) -> None:
    items = {i.id: i for i in load_items(get_benchmark("livecodebench")).items}
    summed = items["abc901_b"].row
    assert summed["testtype"] == "stdin" and summed["func_name"] is None
    assert summed["tests"] == [
        {"input": "3\n1 2 3\n", "output": "6\n"},  # public
        {"input": "1\n-5\n", "output": "-5\n"},  # private (base64 + zlib + pickle of JSON)
        {"input": "4\n10 20 30 40\n", "output": "100\n"},
        {"input": "2\n1000000000 1000000000\n", "output": "2000000000\n"},
    ]
    assert "private_test_cases" not in summed and "public_test_cases" not in summed
    pair = items["3400"].row
    assert (pair["testtype"], pair["func_name"], len(pair["tests"])) == ("functional", "maxPairSum", 4)
    assert len(items["abc910_c"].row["tests"]) == 3  # private tests given as plain JSON
    assert "class Solution" in items["3400"].input and "def maxPairSum" in items["3400"].input
    assert "Read the inputs from stdin" in items["abc901_b"].input  # lcb_runner's stdin format


def test_livecodebench_private_tests_refuse_pickled_objects() -> None:
    tests = json.dumps([{"input": "1", "output": "1", "testtype": "stdin"}])
    assert decode_tests(_packed(tests)) == json.loads(tests)
    hostile = _packed(collections.OrderedDict(a=1))  # needs a global (collections.OrderedDict) to unpickle
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        decode_tests(hostile)
    with pytest.raises(ValueError, match="not JSON text"):
        decode_tests(_packed([1, 2]))
    with pytest.raises(ValueError, match="neither JSON nor base64"):
        decode_tests("not json, not base64!")


def test_livecodebench_caps_decompressed_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    import fusebench.preparers as preparers

    monkeypatch.setattr(preparers, "MAX_TESTS_BYTES", 1000)
    with pytest.raises(ValueError, match="exceed"):
        decode_tests(_packed(json.dumps([{"input": "x" * 5000, "output": ""}])))


def test_livecodebench_bad_private_tests_are_a_usage_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    row = json.loads((FIXTURES / "livecodebench" / "test4.jsonl").read_text().splitlines()[1])
    row["private_test_cases"] = _packed(collections.OrderedDict())
    (tmp_path / "test4.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "test5.jsonl").write_text("")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo_id, filename, **_: str(tmp_path / filename))
    with pytest.raises(UsageError, match="abc901_b: cannot decode its tests: refusing"):
        load_items(get_benchmark("livecodebench"))


def test_livecodebench_generation_params() -> None:
    spec = get_benchmark("livecodebench")
    params = GenParams(**spec.generation)
    assert (params.n, params.temperature, params.top_p, params.max_new_tokens) == (10, 0.2, 0.95, 2000)
    assert spec.metric == "pass@1" and spec.scorer == "livecodebench"


SUM_OK = f"Read all numbers:\n{F}python\nimport sys\nd = sys.stdin.read().split()\nprint(sum(map(int, d[1:])))\n{F}"
SUM_WRONG = (
    f"{F}python\nn = int(input())\nprint(min(sum(map(int, input().split())), 10**9))\n{F}"  # fails a private test
)
PAIR_OK = (
    f"{F}python\nclass Solution:\n    def maxPairSum(self, nums: List[int]) -> int:\n"
    f"        a, b = sorted(nums)[-2:]\n        return a + b\n{F}"
)
PAIR_WRONG = f"{F}python\nclass Solution:\n    def maxPairSum(self, nums):\n        return 2 * max(nums)\n{F}"
REVERSE_OK = f"{F}python\ns = input().strip()\nprint(s[::-1])\nexit()\n{F}"


@pytest.mark.timeout(120)
def test_livecodebench_sandbox_passes_right_and_fails_wrong_solutions(hub_calls: list[Any]) -> None:
    items = {i.id: i for i in load_items(get_benchmark("livecodebench")).items}
    cases = [
        ("abc901_b", SUM_OK, 1.0, "passed"),
        ("abc901_b", SUM_WRONG, 0.0, "test #3: wrong answer"),
        ("abc910_c", REVERSE_OK, 1.0, "passed"),  # exit() after printing ends the program normally
        ("3400", PAIR_OK, 1.0, "passed"),
        ("3400", PAIR_WRONG, 0.0, "test #0: wrong answer"),
        ("3400", f"{F}python\nclass Other:\n    pass\n{F}", 0.0, "neither class Solution nor maxPairSum"),
        ("abc901_b", f"{F}python\nprint(int(input()) +\n{F}", 0.0, "does not compile"),
    ]
    for item_id, output, value, reason in cases:
        score = lcb.score_livecodebench(ScoreInput(output, item_id, items[item_id].row))
        assert (score.value, item_id) == (value, item_id) and reason in score.reason, score.reason


@pytest.mark.timeout(60)
def test_livecodebench_per_test_time_limit_and_stdin_details(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lcb, "PER_TEST_S", 0.5)
    item = {"tests": [{"input": "2 3\n", "output": "5.0\n"}], "testtype": "stdin", "func_name": None}
    slow = ScoreInput(
        f"{F}python\nwhile True:\n    try:\n        pass\n    except Exception:\n        pass\n{F}", "", item
    )
    assert "time limit (0.5 s) exceeded" in lcb.score_livecodebench(slow).reason
    for program in (
        "a, b = map(int, open(0).read().split())\nprint(a + b)",  # fd 0, as many AtCoder answers read it
        "import sys\na, b = map(int, sys.stdin.buffer.readline().split())\nsys.stdout.write(f'{a + b}.00')",
        "import os\na, b = map(int, input().split())\nos.write(1, f'{a + b}\\n'.encode())",
    ):
        assert lcb.score_livecodebench(ScoreInput(f"{F}python\n{program}\n{F}", "", item)).reason == "passed"
    failing = "import sys\nprint(5)\nsys.exit(3)"
    assert "exit status 3" in lcb.score_livecodebench(ScoreInput(f"{F}python\n{failing}\n{F}", "", item)).reason


@pytest.mark.timeout(60)
def test_livecodebench_functional_arguments_one_per_line() -> None:
    item = {
        "tests": [{"input": "[1, 2]\n3", "output": "[3, 6]"}, {"input": "[]\n0", "output": "[]"}],
        "testtype": "functional",
        "func_name": "scale",
    }
    right = f"{F}python\nclass Solution:\n    def scale(self, nums, k):\n        return tuple(x * k for x in nums)\n{F}"
    wrong = f"{F}python\nclass Solution:\n    def scale(self, nums, k):\n        return [x + k for x in nums]\n{F}"
    assert lcb.score_livecodebench(ScoreInput(right, "", item)).value == 1.0  # tuples compare as lists
    assert lcb.score_livecodebench(ScoreInput(wrong, "", item)).value == 0.0


@pytest.mark.timeout(120)
def test_livecodebench_pass_at_1_is_the_mean_of_per_problem_pass_rates(hub_calls: list[Any]) -> None:
    """The harness averages each problem's n sample scores, then the problems: pass@1 by the unbiased estimator."""
    spec = get_benchmark("livecodebench")
    by_id = {i.id: i for i in load_items(spec).items}
    n = spec.generation["n"]
    plan = {"abc901_b": (SUM_OK, SUM_WRONG, 3), "3400": (PAIR_OK, PAIR_WRONG, 7)}  # c correct of n
    items, outputs = [], []
    for item_id, (ok, bad, c) in plan.items():
        items += [by_id[item_id]] * n
        outputs += [ok] * c + [bad] * (n - c)
    result = score_benchmark(spec, items, outputs)
    expected = sum(c / n for _, _, c in plan.values()) / len(plan)  # pass@1 over n samples: the mean
    assert result.n_items == 2 and result.details["n_samples"] == 2 * n
    assert result.interval.estimate == pytest.approx(100 * expected) == pytest.approx(50.0)
