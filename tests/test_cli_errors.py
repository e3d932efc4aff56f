"""Bad input: one clear line on stderr, exit code 2, no traceback, nothing marked complete."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from fusebench.spec import benchmarks_dir
from tests.conftest import cli_env, run_cli


def assert_usage_error(proc, needle: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in lines[0]


def test_unknown_benchmark(tmp_path: Path) -> None:
    proc = run_cli("eval", "--benchmarks", "gsm8k,nope", "--output-dir", str(tmp_path))
    assert_usage_error(proc, "unknown benchmark 'nope'")


def test_unknown_suite(tmp_path: Path) -> None:
    assert_usage_error(run_cli("eval", "--suite", "nope", "--output-dir", str(tmp_path)), "unknown suite")


def test_missing_model_path(tmp_path: Path) -> None:
    proc = run_cli("eval", str(tmp_path / "no-such-model"), "--benchmarks", "gsm8k", "--limit", "1",
                   "--output-dir", str(tmp_path / "out"))  # fmt: skip
    assert_usage_error(proc, "no-such-model")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--limit", "0"], "--limit"),
        (["--max-new-tokens", "-3"], "--max-new-tokens"),
        (["--temperature", "-1"], "temperature"),
        (["--top-p", "2"], "top_p"),
        (["--tag", "novalue"], "key=value"),
        (["--batch-size", "many"], "--batch-size"),
    ],
)
def test_bad_flag_values(tmp_path: Path, flags: list[str], needle: str) -> None:
    assert_usage_error(run_cli("eval", "--benchmarks", "gsm8k", *flags, "--output-dir", str(tmp_path)), needle)


def test_unwritable_output_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_usage_error(run_cli("eval", "--output-dir", str(blocker / "out")), "not writable")


def test_corrupt_data_file_marks_nothing_complete(tmp_path: Path) -> None:
    root = tmp_path / "benchmarks"
    shutil.copytree(benchmarks_dir(), root)
    data = root / "data" / "gsm8k" / "test.jsonl"
    data.write_bytes(data.read_bytes()[:-500])
    out = tmp_path / "out"
    proc = run_cli(
        "eval", "--benchmarks", "gsm8k", "--output-dir", str(out), env=cli_env(FUSEBENCH_BENCHMARKS=str(root))
    )
    assert_usage_error(proc, "corrupt data file")
    db = out / "fusebench.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from runs where status='complete'").fetchone()[0] == 0


def test_show_unknown_run(tmp_path: Path) -> None:
    assert_usage_error(run_cli("show", "nope", "--output-dir", str(tmp_path)), "no results store")
