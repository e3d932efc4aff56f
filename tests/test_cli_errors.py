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
        (["--tag", "family="], "both non-empty"),
        (["--suite", "demo"], "give --suite or --benchmarks, not both"),
        (["--batch-size", "many"], "--batch-size"),
        (["--limit", "abc"], "not a whole number: 'abc'"),
        (["--temperature", "nan"], "temperature must be a finite number"),
        (["--temperature", "inf"], "temperature must be a finite number"),
    ],
)
def test_bad_flag_values(tmp_path: Path, flags: list[str], needle: str) -> None:
    assert_usage_error(run_cli("eval", "--benchmarks", "gsm8k", *flags, "--output-dir", str(tmp_path)), needle)


def test_unreachable_hub_is_a_usage_error(tmp_path: Path) -> None:
    env = {k: v for k, v in cli_env(HF_ENDPOINT="http://127.0.0.1:9").items() if k != "HF_HUB_OFFLINE"}
    proc = run_cli("eval", "someorg/somemodel", "--benchmarks", "gsm8k", "--limit", "1",
                   "--output-dir", str(tmp_path), env=env)  # fmt: skip
    assert_usage_error(proc, "the Hugging Face hub is unreachable")


def test_a_gpu_device_without_a_gpu_is_a_usage_error(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = run_cli("eval", "--benchmarks", "gsm8k", "--limit", "1", "--device", "cuda", "--output-dir", str(tmp_path))
    assert_usage_error(proc, "sees no CUDA GPU")


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    # `true` exits at once without reading: by the time fusebench has imported and prints, the pipe is closed
    cmd = f"{sys.executable} -m fusebench.cli list | true"
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, env=cli_env(), cwd=REPO
    )
    assert (proc.returncode, proc.stderr) == (0, "")


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


def test_negative_max_chars_for_diff(tmp_path: Path) -> None:
    proc = run_cli("diff", "a", "b", "--benchmark", "gsm8k", "--max-chars", "-3", "--output-dir", str(tmp_path))
    assert_usage_error(proc, "must be >= 0, got -3")


def test_reading_commands_do_not_create_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "nosuch.db"
    for command in (["runs"], ["history", "fam"], ["show", "r1"]):
        assert_usage_error(run_cli(*command, "--store", str(missing)), "no results store at")
    assert not missing.exists()


def test_a_gguf_named_file_that_is_not_gguf(tmp_path: Path) -> None:
    """A download error page saved as model.gguf: one line naming the file, exit 2 (a GGUF file cut short:
    test_models.py)."""
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"<html>404 Not Found</html>\n")
    env = cli_env(FUSEBENCH_CACHE=str(tmp_path / "cache"))
    proc = run_cli("eval", str(fake), "--benchmarks", "gsm8k", "--limit", "1", "--output-dir", str(tmp_path / "out"),
                   "--no-progress", env=env)  # fmt: skip
    assert_usage_error(proc, f"{fake} is not a readable GGUF file")
