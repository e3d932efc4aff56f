"""The four judged benchmarks end to end through the CLI, with a real `transformers serve` of the bundled SmolLM2 as
contestant and judge; the judge's traffic goes through tests/fault_proxy.py, which counts it and, for the parsable
path, answers with well-formed verdict bodies instead of the server.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fusebench.exits import EXIT_INCOMPLETE
from fusebench.judging.prompts import alpaca_eval_switched
from tests.conftest import REPO, SHARED_DATA, cli_env, run_cli
from tests.fault_proxy import Fault, FaultProxy
from tests.local_server import serve_bundled_model

pytestmark = pytest.mark.slow

JUDGED = "arena_hard,mt_bench,alpaca_eval2,alignbench"
PARSED = {"regex", "backup_regex", "dict", "logprobs", "token"}  # verdict methods of parsed verdicts
ENV = cli_env(FUSEBENCH_ALIGNBENCH_DIR=str(SHARED_DATA / "alignbench"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`transformers serve` of the bundled model on 127.0.0.1: (base_url, model name)."""
    with serve_bundled_model(tmp_path_factory.mktemp("serve")) as running:
        yield running


def _args(server: tuple[str, str], judge_url: str, out: Path, benches: str, limit: int, *extra: str) -> list[str]:
    url, model = server
    return [
        "eval", model, "--backend", "openai", "--base-url", url, "--benchmarks", benches, "--limit", str(limit),
        "--max-new-tokens", "16", "--judge", model, "--judge-base-url", judge_url, "--judge-max-tokens", "24",
        "--judge-concurrency", "4",
        "--no-progress", "--output-dir", str(out), *extra,
    ]  # fmt: skip


def _results(out: Path, stdout: str) -> dict[str, Any]:
    """results.json of the run that a `fusebench eval` printed."""
    match = re.search(r"^run (\S+?)( \(resumed\))?:", stdout, re.M)
    assert match, stdout
    return dict(json.loads((out / "runs" / match.group(1) / "results.json").read_text()))


def _by_bench(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["benchmark"]: r for r in payload["results"]}


def _judge_rows(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("select count(*) from judgments").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


@pytest.fixture(scope="module")
def garbage_run(server: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """All four judged benchmarks on 1 item, the small model judging (mostly garbage verdicts). Later tests reuse
    its store: the contestant's answers are cached there, and their judge (another proxy port) is keyed apart."""
    out = tmp_path_factory.mktemp("garbage")
    with FaultProxy(server[0]) as proxy:
        done = run_cli(*_args(server, proxy.base_url, out, JUDGED, 1), env=ENV, timeout=600)
        attempts = {k: len(v) for k, v in proxy.attempts.items()}
    assert done.returncode == 0, done.stderr[-3000:]
    return {"stdout": done.stdout, "payload": _results(out, done.stdout), "attempts": attempts, "out": out}


@pytest.mark.shared_data("alignbench")  # garbage_run judges all four: AlignBench's data is not shipped
@pytest.mark.timeout(700)
def test_small_judge_garbage_is_counted_not_scored(garbage_run: dict[str, Any]) -> None:
    stdout, payload = garbage_run["stdout"], garbage_run["payload"]
    assert payload["run"]["status"] == "complete"
    assert "judge failures" in stdout
    results = _by_bench(payload)
    expected_judgments = {"arena_hard": 2, "mt_bench": 2, "alpaca_eval2": 1, "alignbench": 1}
    sent = 0
    for bench, n in expected_judgments.items():
        details = results[bench]["details"]
        assert details["n_judgments"] == n and details["missing_judgments"] == 0
        parsed = sum(c for m, c in details["verdict_methods"].items() if m in PARSED)
        assert parsed + details["judge_failures"] == n
        assert details["judge"]["model"] == payload["run"]["model"]  # the small model judged
        assert f"{bench}: judged by" in stdout and f"judge failures {details['judge_failures']} of {n}" in stdout
        if details["judge_failures"] == n:
            assert results[bench]["score"] is None
        requests = details["judge_usage"]["requests_sent"]
        assert n <= requests <= 2 * n
        if bench != "arena_hard":  # (Arena-Hard does not retry conflicting labels)
            assert requests >= n + details["judge_failures"]  # every failure was asked once more
        sent += requests
    assert sum(garbage_run["attempts"].values()) == sent  # the proxy saw exactly those requests
    samples = garbage_run["out"] / "runs" / payload["run"]["id"]
    (record,) = json.loads((samples / "alpaca_eval2_model_outputs.json").read_text())
    assert record["generator"] == payload["run"]["model"] and record["dataset"] == "helpful_base"


def _body(content: str, top: dict[str, float] | None = None) -> str:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    if top is not None:
        tops = [{"token": t, "logprob": lp} for t, lp in top.items()]
        choice["logprobs"] = {"content": [{"token": content, "logprob": top[content], "top_logprobs": tops}]}
    usage = {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010}
    return json.dumps(
        {"id": "injected", "object": "chat.completion", "model": "judge", "choices": [choice], "usage": usage}
    )


def _section(text: str, who: str) -> str:
    start = text.index(f"<|The Start of Assistant {who}'s Answer|>")
    return text[start : text.index(f"<|The End of Assistant {who}'s Answer|>")]


P_M = 0.8


def _verdict(key: str, attempt: int) -> Fault | None:
    """Well-formed verdicts: the model beats the baseline in both orders, rates 9 then 4, etc."""
    if "<|User Prompt|>" in key:  # the baseline's (long GPT-4) answer is A in game 1
        game1 = len(_section(key, "A")) > len(_section(key, "B"))
        return Fault("200", body=_body("My final verdict: [[B>>A]]" if game1 else "[[A>>B]]"))
    if "Conversation with User" in key:
        return Fault("200", body=_body("Rating: [[4]]"))
    if "[Instruction]" in key:
        return Fault("200", body=_body("Rating: [[9]]"))
    if "## Best Model Identifier" in key:
        return Fault("200", body=_body("m", {"m": math.log(P_M), "M": math.log(1 - P_M)}))
    if "[助手的答案开始]" in key:
        return Fault("200", body=_body("……{'事实正确性': 8, '满足用户需求': 8, '综合得分': 8}"))
    return None


@pytest.mark.shared_data("alignbench")
@pytest.mark.timeout(700)
def test_well_formed_verdicts_move_the_scores(server: tuple[str, str], garbage_run: dict[str, Any]) -> None:
    out = garbage_run["out"]
    with FaultProxy(server[0], plan=_verdict) as proxy:
        done = run_cli(*_args(server, proxy.base_url, out, JUDGED, 1), env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "0 generated" in done.stdout
    assert all(len(v) == 1 for v in proxy.attempts.values()) and len(proxy.attempts) == 6
    payload = _results(out, done.stdout)
    results = _by_bench(payload)
    arena = results["arena_hard"]["details"]["metrics"]
    assert (arena["wins"], arena["losses"], arena["position_consistency"]) == (2, 0, 1.0)
    assert results["arena_hard"]["score"] > 90
    mt = results["mt_bench"]["details"]["metrics"]
    assert (results["mt_bench"]["score"], mt["turn1"], mt["turn2"]) == (6.5, 9.0, 4.0)
    assert results["alignbench"]["score"] == 8.0
    alpaca = results["alpaca_eval2"]
    assert alpaca["details"]["verdict_methods"] == {"logprobs": 1}
    assert alpaca["score"] is None and "undefined" in alpaca["details"]["metrics"]["note"]  # LC needs 2+ outputs
    # the judge prefers "m" with p = 0.8: the model wins with 0.8 where alpaca_eval showed it first, else 0.2
    with sqlite3.connect(out / "fusebench.db") as conn:
        rows = conn.execute(
            "select sample_id, score from scores where run_id=? and benchmark='alpaca_eval2'", (payload["run"]["id"],)
        ).fetchall()
    references = json.loads((REPO / "benchmarks/data/alpaca_eval2/gpt4_turbo_reference_outputs.json").read_text())
    for sample_id, score in rows:
        switched = alpaca_eval_switched(references[int(sample_id)]["instruction"])
        assert score == pytest.approx(P_M if switched else 1 - P_M)
    assert len(rows) == 1


@pytest.mark.shared_data("alignbench")  # resumes garbage_run's store
@pytest.mark.timeout(700)
def test_kill_during_judging_resumes_without_repeating(server: tuple[str, str], garbage_run: dict[str, Any]) -> None:
    out = garbage_run["out"]
    db = out / "fusebench.db"
    start = _judge_rows(db)
    with FaultProxy(server[0]) as proxy:
        args = [sys.executable, "-m", "fusebench.cli", *_args(server, proxy.base_url, out, "mt_bench", 1)]
        proc = subprocess.Popen(args, env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 400
            while _judge_rows(db) < start + 1:
                assert proc.poll() is None and time.monotonic() < deadline, "judging ended before the kill"
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        stored_at_kill = _judge_rows(db)
        time.sleep(3)  # requests the killed process left at the server finish (their answers go nowhere)
        before = sum(len(v) for v in proxy.attempts.values())
        done = run_cli(*_args(server, proxy.base_url, out, "mt_bench", 1), env=ENV, timeout=600)
        after = sum(len(v) for v in proxy.attempts.values())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(resumed)" in done.stdout and "0 generated" in done.stdout
    # the rerun asked for exactly the judgments not stored at the kill: none twice
    assert after - before == _judge_rows(db) - stored_at_kill
    assert after > before  # the kill left judgments to do
    resumed = _by_bench(_results(out, done.stdout))["mt_bench"]
    reference = _by_bench(garbage_run["payload"])["mt_bench"]
    assert resumed["details"]["metrics"] == reference["details"]["metrics"]
    assert resumed["score"] == reference["score"]


@pytest.mark.timeout(700)
def test_budget_stops_judging_and_a_higher_budget_finishes(server: tuple[str, str], tmp_path: Path) -> None:
    prices = ["--judge-price-input", "100", "--judge-price-output", "100", "--judge-concurrency", "1"]
    with FaultProxy(server[0], plan=_verdict) as proxy:  # each judgment: 1010 tokens = 0.101 USD
        tight = run_cli(*_args(server, proxy.base_url, tmp_path, "mt_bench", 1, *prices, "--judge-budget-usd", "0.05"),
                        env=ENV, timeout=600)  # fmt: skip
        assert tight.returncode == EXIT_INCOMPLETE, tight.stderr[-3000:]  # a stopped judge stage is no finished run
        assert "INCOMPLETE" in tight.stderr and "judge budget reached" in tight.stderr
        first = _results(tmp_path, tight.stdout)
        assert first["run"]["status"] == "incomplete"
        assert _by_bench(first)["mt_bench"]["score"] is None
        assert sum(len(v) for v in proxy.attempts.values()) == 1
        more = run_cli(*_args(server, proxy.base_url, tmp_path, "mt_bench", 1, *prices, "--judge-budget-usd", "1"),
                       env=ENV, timeout=600)  # fmt: skip
    assert more.returncode == 0, more.stderr[-3000:]
    assert "(resumed)" in more.stdout and "INCOMPLETE" not in more.stderr
    final = _results(tmp_path, more.stdout)
    assert final["run"]["id"] == first["run"]["id"] and final["run"]["status"] == "complete"
    assert {k: len(v) for k, v in proxy.attempts.items()} == dict.fromkeys(proxy.attempts, 1)
    assert len(proxy.attempts) == 2
    mt = _by_bench(final)["mt_bench"]
    assert mt["score"] == 6.5 and mt["details"]["judge_usage"]["cost_usd"] == pytest.approx(0.202)
    assert "estimated cost $0.2020" in more.stdout
