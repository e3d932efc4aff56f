"""Specs, suites and dataset loading (bundled files, checksums, corrupt data)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fusebench.data import load_items
from fusebench.errors import UsageError
from fusebench.spec import all_benchmarks, averaged, benchmarks_dir, get_benchmark, get_suite

FUSECHAT3 = {
    "alpaca_eval2", "arena_hard", "mt_bench", "alignbench", "mmlu_pro", "mmlu_redux", "gpqa_diamond",
    "gsm8k", "math", "amc23", "livebench", "humaneval", "mbpp", "livecodebench",
}  # fmt: skip


SECOND_SCORINGS = {"mbpp_plus", "mbpp_raw", "humaneval_raw", "mmlu_pro_lenient", "mmlu_redux_lenient",
                   "gpqa_diamond_lenient"}  # fmt: skip


def test_fusechat3_suite_lists_all_14_benchmarks_and_averages_only_them() -> None:
    suite = get_suite("fusechat3")
    # the 14, plus second scorings of their answers (EvalPlus tests, unsanitized code, lenient letter extraction)
    members = {e.benchmark for e in suite.entries}
    assert members == FUSECHAT3 | SECOND_SCORINGS
    assert len(suite.entries) == 20
    for entry in suite.entries:
        get_benchmark(entry.benchmark)  # every member has a spec
    assert averaged(members) == FUSECHAT3  # FuseChat-3.0 averages the 14, each once


def test_every_spec_and_suite_member_is_valid() -> None:
    specs = all_benchmarks()
    for suite_id in ("demo", "math", "fusechat3"):
        for entry in get_suite(suite_id).entries:
            assert entry.benchmark in specs


@pytest.mark.parametrize(
    ("bench", "size", "first_target"),
    [
        ("gsm8k", 1319, "18"),
        ("math", 5000, "2"),
        ("math500", 500, r"\left( 3, \frac{\pi}{2} \right)"),
        ("amc23", 40, "27"),
    ],
)
def test_bundled_math_data_loads_with_gold_answers(bench: str, size: int, first_target: str) -> None:
    data = load_items(get_benchmark(bench))
    assert len(data.items) == size
    assert data.items[0].target == first_target
    assert len({i.id for i in data.items}) == size
    assert data.checksum == get_benchmark(bench).data.sha256


def test_limit_takes_first_items() -> None:
    data = load_items(get_benchmark("gsm8k"), limit=5)
    assert [i.id for i in data.items] == ["0", "1", "2", "3", "4"]


def test_unknown_benchmark_and_suite_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown benchmark 'nope'"):
        get_benchmark("nope")
    with pytest.raises(UsageError, match="unknown suite"):
        get_suite("nope")


@pytest.fixture
def bench_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of benchmarks/ that a test may damage."""
    root = tmp_path / "benchmarks"
    shutil.copytree(benchmarks_dir(), root)
    monkeypatch.setenv("FUSEBENCH_BENCHMARKS", str(root))
    return root


def test_changed_data_file_fails_checksum(bench_copy: Path) -> None:
    path = bench_copy / "data" / "amc23" / "test.jsonl"
    path.write_text(path.read_text().replace("27.0", "28.0", 1))
    with pytest.raises(UsageError, match="does not match"):
        load_items(get_benchmark("amc23"))


def test_garbage_data_file_names_the_line(bench_copy: Path) -> None:
    spec_path = bench_copy / "amc23.yaml"
    spec_path.write_text(spec_path.read_text().replace("  sha256:", "  # sha256:"))
    path = bench_copy / "data" / "amc23" / "test.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:40]
    path.write_text("\n".join(lines))
    with pytest.raises(UsageError, match="line 3"):
        load_items(get_benchmark("amc23"))


def test_knowledge_and_code_benchmarks_load_and_render() -> None:
    from fusebench.prompts import build_conversation

    mmlu = get_benchmark("mmlu_pro")
    item = load_items(mmlu, limit=1).items[0]
    user = build_conversation(mmlu.prompt, item)[-1]["content"]
    assert item.target in "ABCDEFGHIJ" and "\nA. " in user and user.endswith("Answer: Let's think step by step.")
    humaneval = load_items(get_benchmark("humaneval"))
    assert len(humaneval.items) == 164 and humaneval.items[0].id == "HumanEval/0"
    mbpp, mbpp_plus = get_benchmark("mbpp"), get_benchmark("mbpp_plus")
    assert len(load_items(mbpp).items) == 399
    assert mbpp_plus.generation_id == mbpp.generation_id == "mbpp"


def test_generation_by_must_map_each_value_to_overrides() -> None:
    import yaml

    from fusebench.spec import parse_benchmark

    raw = yaml.safe_load((benchmarks_dir() / "mt_bench.yaml").read_text())
    with pytest.raises(UsageError, match=r"generation_by\.values"):
        parse_benchmark({**raw, "generation_by": {"field": "category", "values": {"writing": 0.7}}}, "x.yaml")
    with pytest.raises(UsageError, match=r"bad spec x\.yaml"):
        parse_benchmark({**raw, "generation_by": {"field": "category"}}, "x.yaml")
    spec = parse_benchmark(raw, "x.yaml")
    assert spec.generation_by is not None and spec.generation_by.values["writing"] == {"temperature": 0.7}
    numeric = parse_benchmark({**raw, "generation_by": {"field": "level", "values": {1: {"n": 2}}}}, "x.yaml")
    assert numeric.generation_by is not None and numeric.generation_by.values == {"1": {"n": 2}}  # as rows match


@pytest.mark.parametrize(("bench", "limit"), [("mmlu_pro", 4), ("mmlu_pro", 2000), ("gsm8k", 4), ("mbpp", 4)])
def test_limited_load_reads_the_same_first_items(bench: str, limit: int) -> None:
    """With --limit a pinned file is read only as far as needed (MMLU-Pro's 12,032 Parquet rows are not converted
    for 4 items); the items are those of a full read, and Parquet lists come back as plain lists."""
    spec = get_benchmark(bench)
    full = load_items(spec)
    limited = load_items(spec, limit=limit)
    assert limited.items == full.items[:limit]
    assert (limited.source, limited.checksum) == (full.source, full.checksum)
    if bench == "mmlu_pro":
        assert type(limited.items[0].row["options"]) is list and len(full.items) == 12032
