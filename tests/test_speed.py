"""Speed figures: how generate calls are timed and split between benchmarks, the footer under a run's table, and the
record a real eval stores (results.json, `fusebench show`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, run_cli

from fusebench.backends.base import Completion, EngineStats
from fusebench.report.table import memory_bound_note, speed_footer
from fusebench.speed import SpeedMeter


def _answer(prompt_tokens: int, completion_tokens: int) -> Completion:
    return Completion(0, "...", prompt_tokens, completion_tokens, "stop", 0.0)


def test_a_shared_call_splits_its_seconds_by_completion_tokens() -> None:
    meter = SpeedMeter()
    with meter.call():
        time.sleep(0.4)
        meter.add("gsm8k", _answer(100, 300))
        meter.add("math500", _answer(50, 100))
        meter.add("gsm8k", _answer(80, 0))
    gsm8k, math500 = meter.benchmarks["gsm8k"], meter.benchmarks["math500"]
    assert (gsm8k.samples, gsm8k.prompt_tokens, gsm8k.completion_tokens) == (2, 180, 300)
    assert gsm8k.seconds == pytest.approx(3 * math500.seconds)
    assert gsm8k.seconds + math500.seconds == pytest.approx(meter.backend.seconds) and meter.backend.seconds >= 0.4
    assert meter.backend.to_dict()["tokens_per_s"] == pytest.approx(400 / meter.backend.seconds, rel=1e-2)


def test_loading_the_weights_in_the_first_call_is_not_generation_time() -> None:
    stats, meter = EngineStats(), SpeedMeter()
    with meter.call(stats):
        time.sleep(0.3)
        stats.load_s = 0.25  # what HFBackend.model records when the first batch loads the weights
        meter.add("gsm8k", _answer(10, 10))
    assert meter.backend.seconds == pytest.approx(0.05, abs=0.04)
    with meter.call(stats):  # loaded already: the whole call counts
        time.sleep(0.1)
    assert meter.backend.seconds == pytest.approx(0.15, abs=0.06)


def _record(**backend: Any) -> dict[str, Any]:
    tally = {"samples": 8, "prompt_tokens": 900, "completion_tokens": 2048, "seconds": 64.0, "tokens_per_s": 32.0}
    engine = {"name": "hf", "device": "cpu", "dtype": "float32", "batch_size": 8, "load_s": 0.7}
    engine.update(weights_bytes=538_060_032, decode_steps=256, decode_rows=2048, generate_s=64.0, prefill_s=4.0)
    return {
        "wall_s": 70.2,
        "cached": 14,
        "stages_s": {"model_prepare": 1.5, "generate": 65.0, "judge": 0.0, "score": 0.4},
        "backend": {**engine, **tally, **backend},
        "benchmarks": {"gsm8k": tally},
    }


def test_footer_gives_stages_tokens_and_rates() -> None:
    footer = speed_footer(_record())
    assert "speed: wall 70.2 s (model prepared 1.5 s, generation 65.0 s (weights load 0.7 s of it), scoring 0.4 s)" in (
        footer
    )
    assert "generated 8 samples (14 from the cache) with hf (cpu, float32, batch 8)" in footer
    assert "prompts (prefill) 4.0 s, decoding 60.0 s: 34.1 tok/s while decoding" in footer
    lines = footer.splitlines()
    gsm8k = next(line for line in lines if line.startswith("gsm8k"))
    assert gsm8k.split() == ["gsm8k", "8", "900", "2,048", "64.0", "32.0"]
    assert any(line.startswith("all (hf)") for line in lines)


def test_cpu_float32_note_says_what_bounds_decoding_and_what_bfloat16_trades() -> None:
    note = memory_bound_note(_record()["backend"])
    assert note is not None and note.startswith("CPU float32: each of 256 decode steps read all 0.54 GB")
    assert "(2.3 GB/s)" in note  # 0.538 GB x 256 steps in the 60 s of decoding
    assert "8.0 rows" in note and "memory-bound" in note and "--dtype bfloat16" in note and "batch" in note
    wide = memory_bound_note(_record(decode_rows=256 * 64)["backend"])
    assert wide is not None and "arithmetic" in wide and "memory-bound" not in wide
    assert memory_bound_note(_record(dtype="bfloat16")["backend"]) is None
    assert memory_bound_note(_record(device="cuda:0")["backend"]) is None


def test_a_fully_cached_run_says_nothing_was_generated() -> None:
    record = _record(samples=0, prompt_tokens=0, completion_tokens=0, seconds=0.0, tokens_per_s=None)
    record["benchmarks"] = {}
    assert speed_footer(record).splitlines()[-1] == "nothing generated: 14 samples from the cache"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_eval_stores_speed_and_show_prints_it(tmp_path: Path) -> None:
    args = ["--benchmarks", "gsm8k,math500", "--limit", "3", "--max-new-tokens", "16", "--batch-size", "4"]
    done = run_cli("eval", *args, "--output-dir", str(tmp_path), env=cli_env(FUSEBENCH_PROGRESS="1"))
    assert done.returncode == 0, done.stderr
    assert "tokens:" in done.stderr and "tok/s" in done.stderr  # asked for: bars although stderr is a pipe
    run_id = done.stdout.split("\nrun ")[1].split(":")[0]
    folder = tmp_path / "runs" / run_id
    speed = json.loads((folder / "results.json").read_text())["run"]["summary"]["speed"]
    samples = [json.loads(line) for b in ("gsm8k", "math500") for line in (folder / "samples" / f"{b}.jsonl").open()]
    backend = speed["backend"]
    assert backend["name"] == "hf" and backend["device"] == "cpu" and backend["dtype"] == "float32"
    assert backend["samples"] == 6 and speed["cached"] == 0
    assert backend["completion_tokens"] == sum(s["completion_tokens"] for s in samples)
    assert backend["prompt_tokens"] == sum(s["prompt_tokens"] for s in samples)
    assert backend["tokens_per_s"] > 0 and backend["load_s"] > 0 and backend["weights_bytes"] > 100e6
    assert backend["decode_steps"] >= 16 and backend["decode_rows"] == 6 * 16  # no answer ends within 16 tokens
    per = speed["benchmarks"]
    assert set(per) == {"gsm8k", "math500"} and sum(b["samples"] for b in per.values()) == 6
    assert sum(b["seconds"] for b in per.values()) == pytest.approx(backend["seconds"], abs=0.01)
    assert speed["wall_s"] >= sum(speed["stages_s"].values()) - 0.01 and speed["stages_s"]["generate"] > 0
    for text in (done.stdout, (folder / "results.md").read_text()):
        assert "speed: wall" in text and "CPU float32" in text and "tok/s" in text
    shown = run_cli("show", run_id, "--output-dir", str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    assert speed_footer(speed) in shown.stdout
    again = run_cli("eval", *args, "--no-progress", "--output-dir", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "nothing generated: 6 samples from the cache" in again.stdout


def test_judge_calls_have_their_own_tally(tmp_path: Path) -> None:
    # a judge model cannot run here: scripted contestant and judge (tests/test_judge_stage.py), real eval and store
    from test_judge_stage import Scripted, contestant

    from fusebench.evaluate import EvalConfig, run_eval
    from fusebench.judging.stage import JudgeOptions
    from fusebench.store import Store

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    judge = Scripted("judge", lambda conv: "Rating: [[7]]")
    config = EvalConfig(benchmarks=["mt_bench"], limit=3, progress=False, judge=JudgeOptions())
    speed = run_eval(config, store, contestant, make_judge=lambda model: judge).speed
    assert speed["backend"]["samples"] == 6 and speed["benchmarks"]["mt_bench"]["completion_tokens"] == 60
    assert speed["judge"]["samples"] == len(judge.sent) == 6  # 3 items x 2 turns, each judged once
    assert (speed["judge"]["prompt_tokens"], speed["judge"]["completion_tokens"]) == (600, 60)
    assert set(speed["judge"]["benchmarks"]) == {"mt_bench"} and speed["stages_s"]["judge"] > 0
    assert "judged 6 answers: 600 prompt + 60 completion judge tokens" in speed_footer(speed)
    again = run_eval(config, store, contestant, make_judge=lambda model: judge).speed
    assert "judge" not in again and again["cached"] == 6  # nothing sent the second time: no judge tally
