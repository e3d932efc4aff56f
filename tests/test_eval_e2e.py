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
from datetime import datetime
from pathlib import Path
from typing import Any

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
    times = "select started_at, finished_at, json_extract(summary, '$.rescored_at') from runs where id = ?"
    with sqlite3.connect(db) as conn:
        run_id = conn.execute("select id from runs order by started_at desc limit 1").fetchone()[0]
        conn.execute("update scores set score = 0.5, extracted = 'tampered' where run_id = ?", (run_id,))
        started, finished, rescored = conn.execute(times, (run_id,)).fetchone()
    assert rescored is None
    proc = run_cli("rescore", run_id, "--output-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert _scores(db, run_id) == before
    with sqlite3.connect(db) as conn:  # the generation's times stay; the rescore records its own
        again_started, again_finished, rescored = conn.execute(times, (run_id,)).fetchone()
    assert (again_started, again_finished) == (started, finished)
    assert datetime.fromisoformat(rescored) > datetime.fromisoformat(finished)


def _poll_until(proc: subprocess.Popen[Any], db: Path, rows: int, timeout: float = 900) -> None:
    """Wait until the store holds `rows` generations (or the process ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and _count_generations(db) < rows:
        time.sleep(0.05)


BATCH = 8
ITEMS = 3 * BATCH


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("sampling", [[], ["--temperature", "0.8", "--top-p", "0.95", "--seed", "5"]],
                         ids=["greedy", "sampled"])  # fmt: skip
def test_kill_minus_9_after_a_batch_then_resume_recomputes_nothing_and_scores_match(
    tmp_path: Path, sampling: list[str]
) -> None:
    """Killed right after batch 1 of 3 (batch size 8) completes: its 8 answers are in the store (the old writer
    held all but one of them until batch 2 ended), and the rerun generates only the other 16."""
    common = ["eval", "--benchmarks", "gsm8k", "--limit", str(ITEMS), "--max-new-tokens", "48", "--no-progress",
              *sampling]  # fmt: skip
    args = ["-m", "fusebench.cli", *common, "--batch-size", str(BATCH)]
    killed_dir = tmp_path / "killed"
    db = killed_dir / "fusebench.db"
    proc = subprocess.Popen([sys.executable, *args, "--output-dir", str(killed_dir)], cwd=REPO, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _poll_until(proc, db, BATCH)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the eval finished before it could be killed"
    with sqlite3.connect(db) as conn:
        done_before = dict(conn.execute("select key, created_at from generations").fetchall())
        assert conn.execute("select status from runs").fetchone()[0] == "running"  # kill -9 runs no handler
    assert len(done_before) == BATCH, "the finished batch is in the store, whole, and the next one is not"

    resumed = run_cli(*args[2:], "--output-dir", str(killed_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert _summary(resumed.stdout) == (ITEMS - BATCH, BATCH)  # 0 of the finished batch generated again
    assert "(resumed)" in resumed.stdout
    with sqlite3.connect(db) as conn:
        after = dict(conn.execute("select key, created_at from generations").fetchall())
        assert [r[0] for r in conn.execute("select status from runs")] == ["complete"]
    assert all(after[k] == v for k, v in done_before.items()), "a finished sample was recomputed"

    # uninterrupted, all in one batch: a sample must not depend on the batch it ran in (sampled runs too)
    clean = run_cli(*common, "--batch-size", str(ITEMS), "--output-dir", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    assert _scores(db) == _scores(tmp_path / "clean" / "fusebench.db")
    assert _outputs(db) == _outputs(tmp_path / "clean" / "fusebench.db")


@pytest.mark.timeout(1200)
def test_sigterm_marks_the_run_interrupted_keeps_what_finished_and_a_rerun_completes_it(tmp_path: Path) -> None:
    """SLURM and Kubernetes preempt with SIGTERM: the run ends "interrupted" (not "running" forever), with exit
    code 143, its finished batch stored; `runs` and `show` say so; the same command resumes and completes it."""
    args = ["eval", "--benchmarks", "gsm8k", "--limit", str(ITEMS), "--max-new-tokens", "48", "--no-progress",
            "--batch-size", str(BATCH), "--output-dir", str(tmp_path)]  # fmt: skip
    db = tmp_path / "fusebench.db"
    proc = subprocess.Popen([sys.executable, "-m", "fusebench.cli", *args], cwd=REPO, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _poll_until(proc, db, BATCH)
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        _, stderr = proc.communicate(timeout=120)
        print(f"exited {time.monotonic() - t0:.2f} s after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted (SIGTERM)" in stderr and "rerun the same command" in stderr
    with sqlite3.connect(db) as conn:
        (run_id, status, finished) = conn.execute("select id, status, finished_at from runs").fetchone()
        stored = int(conn.execute("select count(*) from generations").fetchone()[0])
    assert status == "interrupted" and finished is not None
    assert stored == BATCH
    runs = run_cli("runs", "--output-dir", str(tmp_path))
    assert re.search(rf"{run_id}.*interrupted", runs.stdout), runs.stdout
    assert "status interrupted" in run_cli("show", run_id, "--output-dir", str(tmp_path)).stdout

    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert f"run {run_id} (resumed)" in resumed.stdout and _summary(resumed.stdout) == (ITEMS - BATCH, BATCH)
    with sqlite3.connect(db) as conn:
        assert conn.execute("select status from runs").fetchall() == [("complete",)]


@pytest.mark.timeout(900)
def test_failed_server_requests_make_the_run_incomplete_and_a_rerun_sends_exactly_them(tmp_path: Path) -> None:
    """A real OpenAI-compatible server (`transformers serve` of the bundled model) behind a proxy that fails two
    requests: one 503 until the retries run out, one 400. The eval exits 3 (incomplete) with both counted as
    errors and unscored; the rerun sends exactly those two again and exits 0, scored like a run without faults."""
    from tests.fault_proxy import Fault, FaultProxy
    from tests.local_server import serve_bundled_model

    failing = {"A robe takes": Fault("503", retry_after="0"), "Kylar went": Fault("400", body="prompt rejected")}
    phase = {"faults": True}

    def plan(key: str, attempt: int) -> Fault | None:
        hit = [f for fragment, f in failing.items() if fragment in key]
        return hit[0] if hit and phase["faults"] else None

    with serve_bundled_model(tmp_path) as (url, model), FaultProxy(url, plan=plan) as proxy:
        args = [model, "--backend", "openai", "--base-url", proxy.base_url, "--concurrency", "2", "--benchmarks",
                "gsm8k", "--limit", str(BATCH), "--max-new-tokens", "32", "--no-progress"]  # fmt: skip
        first = run_cli("eval", *args, "--output-dir", str(tmp_path / "faulty"))
        assert first.returncode == 3, first.stderr
        assert "INCOMPLETE (gsm8k: 2 items' model requests failed)" in first.stderr
        assert re.search(r"gsm8k\s.*incomplete \(2 errors\)\s+\d+%?\s+2\b", first.stdout), first.stdout
        assert _summary(first.stdout) == (BATCH, 0)
        sent_first = {key: len(a) for key, a in proxy.attempts.items()}
        assert len(sent_first) == BATCH and sum(sent_first.values()) == BATCH - 2 + 7 + 1  # 503: 1 + 6 retries

        phase["faults"] = False
        proxy.attempts.clear()
        second = run_cli("eval", *args, "--output-dir", str(tmp_path / "faulty"))
        assert second.returncode == 0, second.stderr
        assert _summary(second.stdout) == (2, BATCH - 2) and "(resumed)" in second.stdout
        resent = sorted(next(f for f in failing if f in key) for key in proxy.attempts)
        assert resent == sorted(failing) and all(len(a) == 1 for a in proxy.attempts.values())

        clean = run_cli("eval", *args, "--output-dir", str(tmp_path / "clean"))
        assert clean.returncode == 0, clean.stderr
    assert _scores(tmp_path / "faulty" / "fusebench.db") == _scores(tmp_path / "clean" / "fusebench.db")
