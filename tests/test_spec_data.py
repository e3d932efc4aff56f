"""Specs, suites and dataset loading (bundled files, checksums, corrupt data)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from importlib.metadata import EntryPoint
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
                   "gpqa_diamond_lenient", "gsm8k_mathverify", "math_mathverify", "amc23_mathverify"}  # fmt: skip


def test_fusechat3_suite_lists_all_14_benchmarks_and_averages_only_them() -> None:
    suite = get_suite("fusechat3")
    # the 14, plus second scorings of their answers (EvalPlus tests, unsanitized code, lenient letter extraction,
    # math-verify grading)
    members = {e.benchmark for e in suite.entries}
    assert members == FUSECHAT3 | SECOND_SCORINGS
    assert len(suite.entries) == 23
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


# --- spec folders: the bundled one, entry points, --include-path, $FUSEBENCH_INCLUDE_PATH ---------------------------

SUMS = """\
id: {id}
version: 1
category: math
data:
  path: data/sums.jsonl
  input_field: q
  target_field: a
  prepare: {prepare}
scorer: math
"""


def _folder(root: Path, spec_id: str = "sums", prepare: str = "null") -> Path:
    """A plain spec folder: one spec, its data beside it (relative path), a suite."""
    (root / "data").mkdir(parents=True)
    (root / "suites").mkdir()
    (root / f"{spec_id}.yaml").write_text(SUMS.format(id=spec_id, prepare=prepare))
    (root / "data" / "sums.jsonl").write_text('{"q": "1 + 2?", "a": "3"}\n{"q": "2 + 2?", "a": "4"}\n')
    (root / "suites" / f"{spec_id}_suite.yaml").write_text(f"id: {spec_id}_suite\nbenchmarks: [{spec_id}, gsm8k]\n")
    return root


@pytest.fixture
def folders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No --include-path, no $FUSEBENCH_INCLUDE_PATH and no installed entry points but the ones a test gives."""
    from fusebench import spec

    monkeypatch.setattr(spec, "_included", [])
    monkeypatch.delenv("FUSEBENCH_INCLUDE_PATH", raising=False)
    monkeypatch.setattr(spec, "entry_points", lambda group: [])
    spec._entry_point_folders.cache_clear()
    yield
    spec._entry_point_folders.cache_clear()


def test_include_adds_a_folder_whose_data_resolves_beside_its_specs(folders: None, tmp_path: Path) -> None:
    from fusebench.spec import include, spec_folders

    mine = _folder(tmp_path / "mine")
    include([mine])
    assert spec_folders() == (benchmarks_dir(), mine)
    sums = get_benchmark("sums")
    assert "gsm8k" in all_benchmarks()  # added to the bundled ones, not instead of them
    data = load_items(sums)
    assert data.source == str(mine / "data" / "sums.jsonl") and [i.target for i in data.items] == ["3", "4"]
    assert [e.benchmark for e in get_suite("sums_suite").entries] == ["sums", "gsm8k"]
    assert get_suite("demo").id == "demo"


def test_env_folders_are_added_in_order_and_a_folder_counts_once(
    folders: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fusebench.spec import spec_folders

    a, b = _folder(tmp_path / "a", "sums_a"), _folder(tmp_path / "b", "sums_b")
    monkeypatch.setenv("FUSEBENCH_INCLUDE_PATH", os.pathsep.join([str(a), str(b), str(a), ""]))
    assert spec_folders() == (benchmarks_dir(), a, b)
    assert {"sums_a", "sums_b", "gsm8k"} <= set(all_benchmarks())
    monkeypatch.setenv("FUSEBENCH_INCLUDE_PATH", str(tmp_path / "missing"))
    with pytest.raises(UsageError, match=r"spec folder .*missing \(from \$FUSEBENCH_INCLUDE_PATH\) is not a folder"):
        spec_folders()
    monkeypatch.setenv("FUSEBENCH_BENCHMARKS", str(tmp_path / "gone"))
    with pytest.raises(UsageError, match=r"spec folder .*gone \(from \$FUSEBENCH_BENCHMARKS\) is not a folder"):
        spec_folders()


def test_an_id_in_two_folders_is_broken_naming_both_files(folders: None, tmp_path: Path) -> None:
    from fusebench.spec import broken_benchmarks, broken_suites, include

    include([_folder(tmp_path / "a"), _folder(tmp_path / "b")])
    both = f"{tmp_path / 'a' / 'sums.yaml'}, {tmp_path / 'b' / 'sums.yaml'}"
    with pytest.raises(UsageError, match=f"benchmark 'sums' is defined twice: {both}"):
        get_benchmark("sums")
    assert set(broken_benchmarks()) == {"sums"} and get_benchmark("gsm8k").id == "gsm8k"
    assert (
        set(broken_suites()) == {"sums_suite"}
        and "suite 'sums_suite' is defined twice" in broken_suites()["sums_suite"]
    )


def test_a_spec_cannot_set_its_folder(folders: None, tmp_path: Path) -> None:
    from fusebench.spec import broken_benchmarks, include

    mine = _folder(tmp_path / "mine")
    spec = mine / "sums.yaml"
    spec.write_text(spec.read_text().replace("data:\n", "data:\n  folder: /etc\n"))
    include([mine])
    assert broken_benchmarks()["sums"] == f"bad spec {spec}:4: unknown field data.folder"


def _entry_point(name: str, value: str) -> EntryPoint:
    """An installed package's entry point, as importlib.metadata reads it from a dist-info (installing a package per
    unit test would cost seconds; tests/test_thirdparty_benchmark.py installs a real one)."""
    return EntryPoint(name, value, "fusebench.benchmarks")


def test_entry_points_name_a_package_folder_or_a_function(
    folders: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fusebench import spec

    package = _folder(tmp_path / "site" / "acme_specs", "acme_pkg")
    (package / "__init__.py").write_text("")
    other = _folder(tmp_path / "other", "acme_fn")
    (tmp_path / "site" / "acme_locator.py").write_text(f"def folder():\n    return {str(other)!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    eps = [_entry_point("b", "acme_locator:folder"), _entry_point("a", "acme_specs")]
    monkeypatch.setattr(spec, "entry_points", lambda group: eps if group == "fusebench.benchmarks" else [])
    assert spec.spec_folders() == (benchmarks_dir(), package, other)  # sorted by entry point name
    assert load_items(get_benchmark("acme_pkg")).source == str(package / "data" / "sums.jsonl")
    assert get_benchmark("acme_fn").data.folder == other


def test_a_broken_entry_point_is_one_line_naming_it(folders: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from fusebench import spec

    eps = [_entry_point("gone", "no_such_package_here")]
    monkeypatch.setattr(spec, "entry_points", lambda group: eps)
    with pytest.raises(UsageError, match=r"^entry point gone = no_such_package_here \(group fusebench.benchmarks\): "):
        spec.spec_folders()


def test_preparers_come_from_the_registry_lazily_and_from_entry_points(
    folders: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fusebench import preparer_registry
    from fusebench.spec import include

    assert {"gpqa", "mmlu_redux", "livebench", "livecodebench"} <= preparer_registry.known_names()
    (tmp_path / "acme_prep.py").write_text(
        "def double(rows, spec):\n    return [{**r, 'a': str(2 * int(r['a']))} for r in rows]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint("acme_double", "acme_prep:double", "fusebench.preparers")
    monkeypatch.setattr(preparer_registry.NAMES, "plugins", lambda: {ep.name: ep})
    monkeypatch.setattr(preparer_registry, "_REGISTRY", dict(preparer_registry._REGISTRY))  # registers for this test
    include([_folder(tmp_path / "mine", prepare="acme_double")])
    assert "acme_double" in preparer_registry.known_names()
    assert [i.target for i in load_items(get_benchmark("sums")).items] == ["6", "8"]
    with pytest.raises(KeyError):
        preparer_registry.get_preparer("nope")


def test_the_wheel_ships_every_package_and_the_spec_folder(tmp_path: Path) -> None:
    """`pip install .` installs what the repository holds: every fusebench* package (discovered, not listed by hand)
    and benchmarks/ as the package fusebench_benchmarks (the repository's symlink), with its specs, suites and data."""
    import subprocess
    import sys
    import zipfile

    from tests.conftest import REPO

    src = tmp_path / "src"  # a copy: building in the checkout would write build/ and *.egg-info there
    src.mkdir()
    for name in ("fusebench", "fusebench_train", "benchmarks"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    (src / "fusebench_benchmarks").symlink_to((REPO / "fusebench_benchmarks").readlink())
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    done = subprocess.run([*command, "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())

    packages = {p.parent for name in ("fusebench", "fusebench_train") for p in (src / name).rglob("__init__.py")}
    assert packages and all(f"{p.relative_to(src)}/__init__.py" in shipped for p in packages)
    specs = src / "benchmarks"
    expected = [*specs.glob("*.yaml"), *specs.glob("suites/*.yaml"), *specs.glob("data/*.md"), *specs.glob("data/*/*")]
    missing = [p for p in expected if p.is_file() and f"fusebench_benchmarks/{p.relative_to(specs)}" not in shipped]
    assert len(expected) > 40 and not missing
    assert "fusebench_benchmarks/__init__.py" in shipped
