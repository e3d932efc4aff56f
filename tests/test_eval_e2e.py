"""End to end on the real bundled model (SmolLM2-135M-Instruct), offline: eval, cache, resume after kill -9, rescore."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_env, run_cli

pytestmark = pytest.mark.slow

MATH_BENCHES = "gsm8k,math,math500,amc23"


def _summary(stdout: str) -> tuple[int, int]:
    match = re.search(r"(\d+) generated, (\d+) from cache", stdout)
    assert match, stdout
    return int(match.group(1)), int(match.group(2))


def _count_generations(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("select count(*) from generations").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def _outputs(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("select sample_id, output from generations"))


def _scores(db: Path, run_id: str | None = None) -> dict[tuple[str, str, int], float]:
    with sqlite3.connect(db) as conn:
        if run_id is None:
            run_id = conn.execute("select id from runs order by started_at desc limit 1").fetchone()[0]
        rows = conn.execute("select benchmark, sample_id, sample_index, score from scores where run_id=?", (run_id,))
        return {(b, s, i): v for b, s, i, v in rows}


@pytest.mark.timeout(900)
def test_eval_every_math_benchmark_then_cached_rerun(tmp_path: Path) -> None:
    args = ["eval", "--benchmarks", MATH_BENCHES, "--limit", "3", "--max-new-tokens", "96", "--no-progress",
            "--output-dir", str(tmp_path)]  # fmt: skip
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    generated, cached = _summary(first.stdout)
    assert (generated, cached) == (12, 0)
    for bench in MATH_BENCHES.split(","):
        assert re.search(rf"\b{bench}\b.*accuracy\s+3\b", first.stdout), first.stdout
    assert "average (plain mean)" in first.stdout

    run_dir = next((tmp_path / "runs").iterdir())
    payload = json.loads((run_dir / "results.json").read_text())
    assert payload["run"]["status"] == "complete"
    env = payload["run"]["environment"]
    assert env["packages"]["torch"] and env["backend"]["dtype"]
    assert payload["run"]["model_fingerprint"]["chat_template"]
    lines = [json.loads(x) for x in (run_dir / "samples" / "gsm8k.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    assert all(x["output"] and x["completion_tokens"] > 0 and x["score"] in (0.0, 1.0) for x in lines)
    assert lines[0]["target"] == "18"

    t0 = time.monotonic()
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert _summary(second.stdout) == (0, 12)
    db = tmp_path / "fusebench.db"
    with sqlite3.connect(db) as conn:
        run_ids = [r[0] for r in conn.execute("select id from runs order by started_at")]
    assert len(run_ids) == 2
    assert _scores(db, run_ids[0]) == _scores(db, run_ids[1])
    print(f"cached rerun took {time.monotonic() - t0:.1f} s (subprocess, imports included)")


@pytest.mark.timeout(900)
def test_changed_generation_param_recomputes_and_rescore_restores(tmp_path: Path) -> None:
    base = ["eval", "--benchmarks", "gsm8k", "--limit", "2", "--no-progress", "--output-dir", str(tmp_path)]
    assert _summary(run_cli(*base, "--max-new-tokens", "40").stdout) == (2, 0)
    assert _summary(run_cli(*base, "--max-new-tokens", "41").stdout) == (2, 0)
    db = tmp_path / "fusebench.db"
    before = _scores(db)
    with sqlite3.connect(db) as conn:
        run_id = conn.execute("select id from runs order by started_at desc limit 1").fetchone()[0]
        conn.execute("update scores set score = 0.5, extracted = 'tampered' where run_id = ?", (run_id,))
    proc = run_cli("rescore", run_id, "--output-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert _scores(db, run_id) == before


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("sampling", [[], ["--temperature", "0.8", "--top-p", "0.95", "--seed", "5"]],
                         ids=["greedy", "sampled"])  # fmt: skip
def test_kill_minus_9_then_resume_recomputes_nothing_and_scores_match(tmp_path: Path, sampling: list[str]) -> None:
    common = ["eval", "--benchmarks", "gsm8k", "--limit", "8", "--max-new-tokens", "48", "--no-progress", *sampling]
    args = ["-m", "fusebench.cli", *common, "--batch-size", "1"]
    killed_dir = tmp_path / "killed"
    db = killed_dir / "fusebench.db"
    proc = subprocess.Popen([sys.executable, *args, "--output-dir", str(killed_dir)], cwd=REPO, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if _count_generations(db) >= 2:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the eval finished before it could be killed"
    with sqlite3.connect(db) as conn:
        done_before = dict(conn.execute("select key, created_at from generations").fetchall())
        assert conn.execute("select status from runs").fetchone()[0] == "running"
    assert 2 <= len(done_before) < 8

    resumed = run_cli(*args[2:], "--output-dir", str(killed_dir))
    assert resumed.returncode == 0, resumed.stderr
    generated, cached = _summary(resumed.stdout)
    assert cached == len(done_before) and generated == 8 - len(done_before)
    assert "(resumed)" in resumed.stdout
    with sqlite3.connect(db) as conn:
        after = dict(conn.execute("select key, created_at from generations").fetchall())
        assert [r[0] for r in conn.execute("select status from runs")] == ["complete"]
    assert all(after[k] == v for k, v in done_before.items()), "a finished sample was recomputed"

    # uninterrupted, all eight in one batch: a sample must not depend on the batch it ran in (sampled runs too)
    clean = run_cli(*common, "--batch-size", "8", "--output-dir", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    assert _scores(db) == _scores(tmp_path / "clean" / "fusebench.db")
    assert _outputs(db) == _outputs(tmp_path / "clean" / "fusebench.db")
