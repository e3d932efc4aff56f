"""Fail before spending compute: a spec's scorer, preparer, transform, judge files and data resolve before the first
generation; a broken spec names its file and line and fails only the commands that use it."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from fusebench.errors import UsageError
from fusebench.spec import all_benchmarks, benchmarks_dir, broken_benchmarks, get_benchmark, get_suite
from tests.conftest import cli_env, run_cli


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of benchmarks/ (FUSEBENCH_BENCHMARKS) that a test may damage."""
    root = tmp_path / "benchmarks"
    shutil.copytree(benchmarks_dir(), root)
    monkeypatch.setenv("FUSEBENCH_BENCHMARKS", str(root))
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _line_of(path: Path, start: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(start))


def _eval(specs: Path, out: Path, *args: str):  # type: ignore[no-untyped-def]
    return run_cli("eval", *args, "--output-dir", str(out), env=cli_env(FUSEBENCH_BENCHMARKS=str(specs)))


def _one_error_line(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return str(lines[0])


def _stored(out: Path, table: str = "generations") -> int:
    """Rows of a store table under `out` (0 when no store was even created)."""
    db = out / "fusebench.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


def test_unknown_scorer_stops_the_suite_before_any_generation(specs: Path, tmp_path: Path) -> None:
    """The issue's case: a gsm8k.yaml with `scorer: nosuchscorer` generated every answer first. Now the demo suite
    (gsm8k among six) stops in seconds, naming the file and the line, with no answer generated and no run left."""
    spec = specs / "gsm8k.yaml"
    _edit(spec, "scorer: math_qwen25", "scorer: nosuchscorer")
    started = time.monotonic()
    proc = _eval(specs, tmp_path / "out", "--suite", "demo")
    line = _one_error_line(proc)
    assert f"{spec}:{_line_of(spec, 'scorer:')}: unknown scorer 'nosuchscorer'" in line
    assert "known: " in line and "math" in line
    assert _stored(tmp_path / "out") == 0
    assert time.monotonic() - started < 60  # no model was loaded (a generation takes minutes on CPU)
    assert _stored(tmp_path / "out", "runs") == 0  # no run left "failed"


@pytest.mark.parametrize(
    ("bench", "old", "new", "needle"),
    [
        ("mmlu_redux", "prepare: mmlu_redux", "prepare: nosuchpreparer", "unknown data.prepare 'nosuchpreparer'"),
        ("amc23", "target_transform: number", "target_transform: nope", "unknown data.target_transform 'nope'"),
    ],
)
def test_unknown_preparer_or_transform_names_the_spec_line(
    specs: Path, tmp_path: Path, bench: str, old: str, new: str, needle: str
) -> None:
    spec = specs / f"{bench}.yaml"
    _edit(spec, old, new)
    line = _one_error_line(_eval(specs, tmp_path / "out", "--benchmarks", f"gsm8k,{bench}", "--limit", "2"))
    assert f"{spec}:{_line_of(spec, 'data:')}: {needle}" in line
    assert _stored(tmp_path / "out") == 0


def test_missing_judge_prompt_file_stops_before_generation(specs: Path, tmp_path: Path) -> None:
    """Judge files are read at judging time, after every answer; they are resolved up front now. No judge key is
    set either: the missing file is found first, and nothing was generated."""
    _edit(specs / "arena_hard.yaml", "prompt_file: ", "prompt_file: nosuch/")
    env = cli_env(FUSEBENCH_BENCHMARKS=str(specs), OPENAI_API_KEY="")
    proc = run_cli("eval", "--benchmarks", "arena_hard", "--limit", "2", "--output-dir", str(tmp_path / "o"), env=env)
    assert "judge prompt_file not found" in _one_error_line(proc)
    assert _stored(tmp_path / "o") == 0


def test_corrupt_yaml_names_file_and_line_and_breaks_only_its_users(specs: Path, tmp_path: Path) -> None:
    """One corrupt spec used to break every command, `list` included, with a parser message and no file."""
    spec = specs / "math500.yaml"
    lines = spec.read_text().splitlines()
    at = _line_of(spec, "scorer:")
    lines[at - 1] = "scorer: [math"  # an unclosed flow sequence
    spec.write_text("\n".join(lines) + "\n")

    listing = run_cli("list", env=cli_env(FUSEBENCH_BENCHMARKS=str(specs)))
    assert listing.returncode == 0, listing.stderr
    broken = [line for line in listing.stdout.splitlines() if line.startswith("BROKEN")]
    assert len(broken) == 1 and broken[0].startswith(f"BROKEN math500: bad spec {spec}:"), listing.stdout
    assert f"from line {at}" in broken[0]  # yaml's context mark: where the unclosed sequence starts
    assert "gsm8k" in listing.stdout and "mmlu_pro" in listing.stdout  # the others are still listed

    line = _one_error_line(_eval(specs, tmp_path / "out", "--benchmarks", "math500", "--limit", "1"))
    assert line.startswith(f"fusebench: error: bad spec {spec}:") and "while parsing a flow sequence" in line
    assert get_suite("demo").id == "demo"  # a suite naming it still loads; using the spec fails
    with pytest.raises(UsageError, match=r"math500\.yaml"):
        get_benchmark("math500")
    assert get_benchmark("gsm8k").scorer == "math_qwen25"  # its neighbours load
    assert set(broken_benchmarks()) == {"math500"}
    assert "math500" not in all_benchmarks() and len(all_benchmarks()) == len(list(specs.glob("*.yaml"))) - 1


def test_schema_errors_name_the_line(specs: Path) -> None:
    _edit(specs / "gsm8k.yaml", "scorer: math", "scorr: math")
    _edit(specs / "amc23.yaml", "category: math", "category: maths")
    broken = broken_benchmarks()
    assert broken["gsm8k"] == f"bad spec {specs / 'gsm8k.yaml'}:{_line_of(specs / 'gsm8k.yaml', 'scorr')}: " + (
        "unknown field 'scorr'"
    )
    assert broken["amc23"].startswith(f"bad spec {specs / 'amc23.yaml'}:{_line_of(specs / 'amc23.yaml', 'category')}")
    assert "math500" in all_benchmarks()


def test_a_spec_whose_id_is_taken_twice_is_broken(specs: Path) -> None:
    """A copied gsm8k.yaml that keeps `id: gsm8k`: which one is meant is ambiguous, so gsm8k fails (naming both)."""
    shutil.copy(specs / "gsm8k.yaml", specs / "gsm8k_mine.yaml")
    with pytest.raises(UsageError, match=r"defined twice: .*gsm8k\.yaml, .*gsm8k_mine\.yaml"):
        get_benchmark("gsm8k")
    assert get_benchmark("math500").id == "math500"


def test_broken_suite_fails_only_its_users(specs: Path, tmp_path: Path) -> None:
    (specs / "suites" / "mine.yaml").write_text("id: mine\nbenchmarks: [gsm8k\n")
    listing = run_cli("list", env=cli_env(FUSEBENCH_BENCHMARKS=str(specs)))
    assert listing.returncode == 0
    assert any(line.startswith("BROKEN suite mine: bad spec") for line in listing.stdout.splitlines())
    assert "demo" in listing.stdout
    line = _one_error_line(_eval(specs, tmp_path / "out", "--suite", "mine"))
    assert f"{specs / 'suites' / 'mine.yaml'}:" in line
    assert get_suite("demo").id == "demo"
