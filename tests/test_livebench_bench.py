"""LiveBench-0831: the real spec, the `livebench` preparer and the loaders (four pinned hub datasets, or a local
folder named by FUSEBENCH_LIVEBENCH_DIR), on LiveBench-schema fixtures.

The hub call (`datasets.load_dataset`) is replaced by a reader of tests/fixtures/livebench{,_extra}/ serving each
category's rows with the hub's types (release dates as datetimes). The end-to-end test runs the real CLI on the real
bundled model, offline, through the local-folder mechanism.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusebench.data import load_items
from fusebench.errors import UsageError
from fusebench.preparers import prepare_livebench
from fusebench.prompts import build_conversation
from fusebench.scoring import score_benchmark
from fusebench.spec import BenchmarkSpec, get_benchmark
from tests.conftest import cli_env, run_cli

FIXTURES = Path(__file__).parent / "fixtures"
BASE = FIXTURES / "livebench" / "question.jsonl"
EXTRA = FIXTURES / "livebench_extra" / "question.jsonl"
ENV = "FUSEBENCH_LIVEBENCH_DIR"
CATEGORIES = ("math", "reasoning", "data_analysis", "language")


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


BASE_IDS = [r["question_id"] for r in _rows(BASE)]
KEPT_EXTRA = {"jul0726", "rem1125"}  # see tests/fixtures/livebench_extra/README.md


def with_options(spec: BenchmarkSpec, **options: Any) -> BenchmarkSpec:
    data = dataclasses.replace(spec.data, options={**spec.data.options, **options})
    return dataclasses.replace(spec, data=data)


@pytest.fixture
def hub_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Serve livebench/<category> from the fixtures (hub types: release dates are datetimes); record every call."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.delenv(ENV, raising=False)

    def load_dataset(path: str, name: str | None = None, *, split: str, revision: str) -> list[dict[str, Any]]:
        calls.append((path, name, split, revision))
        org, _, category = path.partition("/")
        assert org == "livebench", path
        rows = [r for r in _rows(BASE) + _rows(EXTRA) if r["category"] == category]
        return [{**r, "livebench_release_date": datetime.fromisoformat(r["livebench_release_date"])} for r in rows]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def _hub_refs(spec: BenchmarkSpec) -> list[tuple[str, str]]:
    assert spec.data.hub is not None
    extra = [ref.partition("@") for ref in spec.data.options["extra_hub_datasets"]]
    return [(spec.data.hub.id, spec.data.hub.revision), *((repo, rev) for repo, _, rev in extra)]


# --- the spec and the hub loader ------------------------------------------------------------------------------


def test_spec_is_the_0831_release_of_the_four_ground_truth_categories() -> None:
    spec = get_benchmark("livebench")
    assert spec.category == "general" and spec.scorer == "livebench"
    assert spec.breakdown_field == "category"
    options = spec.data.options
    assert str(options["release"]) == "2024-08-31" and tuple(options["categories"]) == CATEGORIES
    refs = _hub_refs(spec)
    assert [repo for repo, _ in refs] == [f"livebench/{c}" for c in CATEGORIES]
    assert all(re.fullmatch("[0-9a-f]{40}", rev) for _, rev in refs)  # commit SHAs, not branch names
    assert "instruction_following" in spec.description and ENV in spec.description


@pytest.mark.timeout(30)
def test_reads_the_four_hub_datasets_at_their_pinned_revisions(hub_calls: list[Any]) -> None:
    spec = get_benchmark("livebench")
    data = load_items(spec)
    assert hub_calls == [(repo, None, "test", rev) for repo, rev in _hub_refs(spec)]
    assert data.source == " + ".join(f"hf://{repo}@{rev}" for repo, rev in _hub_refs(spec))
    assert data.checksum == ",".join(rev for _, rev in _hub_refs(spec))
    assert {i.row["hub_dataset"] for i in data.items} == {f"livebench/{c}" for c in CATEGORIES}


@pytest.mark.timeout(30)
def test_selects_questions_of_release_0831_as_livebench_does(hub_calls: list[Any]) -> None:
    items = load_items(get_benchmark("livebench")).items
    assert {i.id for i in items} == set(BASE_IDS) | KEPT_EXTRA
    dates = {i.id: (i.row["livebench_release_date"], i.row["livebench_removal_date"]) for i in items}
    assert dates["jul0726"] == ("2024-07-26", "") and dates["rem1125"] == ("2024-06-24", "2024-11-25")
    # release option 2024-07-26 keeps what that release had: nothing released on 0831, what 0726 removed dropped
    earlier = load_items(with_options(get_benchmark("livebench"), release="2024-07-26")).items
    assert {i.id for i in earlier} == {"jul0726", "rem1125", "rem0831"}


@pytest.mark.timeout(30)
def test_items_prompt_target_and_fields(hub_calls: list[Any]) -> None:
    spec = get_benchmark("livebench")
    by_id = {i.id: i for i in load_items(spec).items}
    for raw in _rows(BASE):
        item = by_id[raw["question_id"]]
        assert item.input == raw["turns"][0] and item.target == raw["ground_truth"]
        assert {k: item.row.get(k) for k in ("category", "task", "subtask")} == {
            k: raw.get(k) for k in ("category", "task", "subtask")
        }
        assert build_conversation(spec.prompt, item) == [{"role": "user", "content": raw["turns"][0]}]


@pytest.mark.timeout(60)
def test_scores_and_category_breakdown_through_the_spec(hub_calls: list[Any]) -> None:
    spec = get_benchmark("livebench")
    items = [i for i in load_items(spec).items if i.id in BASE_IDS]
    answers: dict[str, dict[str, Any]] = {}
    for answer in _rows(FIXTURES / "livebench" / "answers.jsonl"):
        answers.setdefault(answer["question_id"], answer)  # the first answer to each question
    result = score_benchmark(spec, items, [answers[i.id]["answer"] for i in items])
    expected = [float(answers[i.id]["expected"]) for i in items]
    assert [s.value for s in result.scores] == pytest.approx(expected)
    per_category: dict[str, list[float]] = {}
    for item, value in zip(items, expected, strict=True):
        per_category.setdefault(item.row["category"], []).append(value)
    assert result.details["breakdown"] == {
        c: {"n": len(v), "score": pytest.approx(100 * sum(v) / len(v))} for c, v in sorted(per_category.items())
    }


def test_offline_hub_failure_names_the_local_folder_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(UsageError, match=f"cannot load livebench from the hub.*{ENV}"):
        load_items(get_benchmark("livebench"))


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"extra_hub_datasets": ["livebench/reasoning"]}, "not id@revision"),
        ({"release": None}, "needs release"),
        ({"release": "31/08/2024"}, "not an ISO date"),
    ],
)
def test_bad_options_are_usage_errors(hub_calls: list[Any], options: dict[str, Any], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        load_items(with_options(get_benchmark("livebench"), **options))


# --- the selection rule, as a property ------------------------------------------------------------------------

RELEASES = ["2024-06-24", "2024-07-26", "2024-08-31", "2024-11-25"]
DAYS = [*RELEASES, "2024-08-15", "2025-04-02"]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(RELEASES),
    st.lists(st.tuples(st.sampled_from(DAYS), st.sampled_from(["", *DAYS]), st.booleans()), max_size=12),
)
def test_selection_matches_livebench_string_rule(option: str, rows: list[tuple[str, str, bool]]) -> None:
    spec = with_options(get_benchmark("livebench"), release=option, releases=RELEASES)
    raw = [
        {"question_id": str(n), "category": "math", "turns": ["q"], "ground_truth": "1",
         "livebench_release_date": datetime.fromisoformat(added) if as_datetime else added,
         "livebench_removal_date": removed}
        for n, (added, removed, as_datetime) in enumerate(rows)
    ]  # fmt: skip
    kept = [r["question_id"] for r in prepare_livebench(raw, spec)]
    # LiveBench: release date in the releases up to the option; removal date empty or after the option
    release_set = {r for r in RELEASES if r <= option}
    expected = [
        str(n)
        for n, (added, removed, _) in enumerate(rows)
        if added in release_set and (removed == "" or removed > option)
    ]
    assert kept == expected


# --- a local folder instead of the hub ------------------------------------------------------------------------


def _livebench_layout(root: Path) -> None:
    """The fixtures split the way LiveBench's download_questions lays them out: <category>/<task>/question.jsonl."""
    for row in _rows(BASE) + _rows(EXTRA):
        folder = root / "live_bench" / row["category"] / row["task"]
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "question.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


@pytest.mark.timeout(30)
def test_local_folder_replaces_the_hub(hub_calls: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _livebench_layout(tmp_path / "data")
    (tmp_path / "data" / "notes.jsonl").write_text("not json\n")  # only question.jsonl files are read
    monkeypatch.setenv(ENV, str(tmp_path / "data"))
    data = load_items(get_benchmark("livebench"))
    assert hub_calls == []
    assert {i.id for i in data.items} == set(BASE_IDS) | KEPT_EXTRA
    assert data.source == str(tmp_path / "data") and len(data.checksum) == 64
    edited = tmp_path / "data" / "live_bench" / "math" / "AMPS_Hard" / "question.jsonl"
    edited.write_text(edited.read_text().replace("6 x^2", "7 x^2"))
    assert load_items(get_benchmark("livebench")).checksum != data.checksum


@pytest.mark.parametrize("make", [False, True])
def test_local_folder_without_question_files_is_a_usage_error(
    hub_calls: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: bool
) -> None:
    folder = tmp_path / "missing"
    if make:
        folder.mkdir()
        shutil.copy(EXTRA, folder / "questions.jsonl")  # not named question.jsonl
    monkeypatch.setenv(ENV, str(folder))
    with pytest.raises(UsageError, match=f"{ENV}=.*no files matching"):
        load_items(get_benchmark("livebench"))
    assert hub_calls == []


# --- end to end -----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_eval_livebench_end_to_end_on_the_bundled_model(tmp_path: Path) -> None:
    args = ["eval", "--benchmarks", "livebench", "--limit", "4", "--max-new-tokens", "32", "--no-progress",
            "--output-dir", str(tmp_path)]  # fmt: skip
    proc = run_cli(*args, env=cli_env(**{ENV: str(FIXTURES / "livebench")}))
    assert proc.returncode == 0, proc.stderr
    assert "livebench" in proc.stdout
    with sqlite3.connect(tmp_path / "fusebench.db") as conn:
        rows = conn.execute("select benchmark, sample_id, score from scores").fetchall()
    assert {b for b, _, _ in rows} == {"livebench"}
    assert sorted(s for _, s, _ in rows) == sorted(BASE_IDS[:4])
    assert all(0.0 <= v <= 1.0 for _, _, v in rows)
