"""The fusion pipeline end to end on the real bundled model (SmolLM2-135M-Instruct), reduced: few prompts, tiny
max tokens, two training steps. Then kill -9 during SFT and resume.

Sources: the bundled model twice, at two temperatures (the only model every test machine has; the tiny
example config adds Qwen2.5-Coder-0.5B). Prompts: one-step arithmetic written by the test, so that a 135M
model gets some right and some wrong within 48 tokens (GSM8K would give no correct answer at that length).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from safetensors.torch import load_file

from tests.conftest import REPO, cli_env

pytestmark = pytest.mark.slow

TRAIN = {"learning_rate": 1e-4, "max_steps": 2, "gradient_accumulation_steps": 1, "max_length": 192, "save_steps": 1,
         "logging_steps": 1}  # fmt: skip
DPO_EXTRA = {"lr_scheduler_type": "constant_with_warmup", "max_grad_norm": 0.5}  # TRL options fusebench never declared
PROMPTS = [(a, b) for a, b in [(7, 5), (12, 9), (3, 8), (20, 22), (6, 7), (15, 4), (9, 9), (31, 12)]]


def _config(tmp_path: Path, **sft: Any) -> Path:
    prompts = tmp_path / "arith.jsonl"
    prompts.write_text(
        "".join(json.dumps({"question": f"What is {a} + {b}?", "answer": a + b}) + "\n" for a, b in PROMPTS)
    )
    raw = {
        "work_dir": str(tmp_path / "work"),
        "target": "smollm2-135m-instruct",
        "sources": [
            {"name": "smol-t0.7", "model": "smollm2-135m-instruct", "temperature": 0.7},
            {"name": "smol-t1.2", "model": "smollm2-135m-instruct", "temperature": 1.2},
        ],
        "prompts": [{"path": str(prompts), "domain": "math", "target_transform": "number"}],
        "sample": {"samples_per_prompt": {"math": 4}, "max_new_tokens": 48},
        "build": {"sft_fraction": {"math": 0.4}},
        "sft": {**TRAIN, "per_device_train_batch_size": 2, **sft},
        "dpo": {**TRAIN, "per_device_train_batch_size": 1, **DPO_EXTRA},
        "eval": {"benchmarks": ["gsm8k"], "limit": 3, "max_new_tokens": 32, "family": "test-fuse"},
    }  # fmt: skip
    path = tmp_path / "fuse.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run(config: Path, until: str, *extra: str) -> subprocess.Popen[str]:
    code = (
        "import sys; from fusebench_train.config import load_config; from fusebench_train.pipeline import Pipeline; "
        "print(Pipeline(load_config(sys.argv[1])).run(until=sys.argv[2], force_from=(sys.argv[3:] or [None])[0]))"
    )
    env = cli_env(PYTHONPATH=str(REPO), TQDM_DISABLE="1")
    return subprocess.Popen(
        [sys.executable, "-c", code, str(config), until, *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 1500) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err[-3000:]
    return out, err


def _weights(folder: Path) -> dict[str, Any]:
    return load_file(str(folder / "model.safetensors"))


@pytest.mark.timeout(3000)
def test_reduced_fusion_run_then_skip_then_kill_during_sft_and_resume(tmp_path: Path) -> None:
    config = _config(tmp_path)
    work = tmp_path / "work"
    out, _ = _finish(_run(config, "eval"))

    manifest = json.loads((work / "manifest.json").read_text())
    assert all(manifest[s]["status"] == "done" for s in ("sample", "score", "build", "sft", "dpo", "eval"))
    samples = [json.loads(x) for x in (work / "sample" / "journal.jsonl").read_text().splitlines()]
    assert len(samples) == len(PROMPTS) * 4 * 2

    # selection rules on the real scored samples
    sft = [json.loads(x) for x in (work / "build" / "sft_selection.jsonl").read_text().splitlines()]
    pairs = [json.loads(x) for x in (work / "build" / "dpo_pairs.jsonl").read_text().splitlines()]
    assert sft and pairs
    assert all(r["correct"] is True for r in sft)
    for p in pairs:
        assert p["chosen"]["source"] == p["rejected"]["source"] == p["source"]
        assert p["chosen"]["correct"] is True and p["rejected"]["correct"] is False
        assert p["gap"] == 1.0  # verifiable: correct (1) vs incorrect (0)
    assert not {r["prompt_id"] for r in sft} & {p["prompt_id"] for p in pairs}
    stats = json.loads((work / "build" / "stats.json").read_text())
    assert stats["dpo_pairs"] == len(pairs) and "DPO pairs:" in out

    # training changed the weights: base -> SFT -> fused
    from fusebench.models import converted_dir, resolve_model

    base = _weights(converted_dir(resolve_model(None)))
    sft_w, dpo_w = _weights(work / "sft" / "final"), _weights(work / "dpo" / "final")
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not base[name].equal(sft_w[name]) and not sft_w[name].equal(dpo_w[name])
    assert not (work / "sft" / "checkpoints").exists() and not (work / "dpo" / "checkpoints").exists()

    # the trainer ran with TRL's config as the YAML section wrote it, over fusebench's overlay
    import torch

    args = torch.load(work / "dpo" / "final" / "training_args.bin", weights_only=False)
    assert type(args).__name__ == "DPOConfig" and args.lr_scheduler_type == DPO_EXTRA["lr_scheduler_type"]
    assert (args.max_grad_norm, args.loss_type, args.beta, args.max_steps) == (0.5, ["sigmoid_norm"], 10.0, 2)
    assert Path(args.output_dir) == work / "dpo" / "checkpoints" and (args.seed, args.report_to) == (0, [])

    # gains table: every benchmark of the suite, runs tagged
    gains = json.loads((work / "eval" / "gains.json").read_text())
    assert [r["benchmark"] for r in gains["rows"]] == ["gsm8k"]
    assert set(gains["runs"]) == {"base", "sft", "fused"}
    assert {"sft", "fused"} <= set(gains["rows"][0]["delta"]) and "average (Δ mean)" in out and "gsm8k" in out

    # a rerun skips every stage
    out, _ = _finish(_run(config, "eval"))
    assert "'eval': 'skipped'" in out and "'ran'" not in out

    # longer SFT: sampling/scoring/build are reused; kill -9 once a checkpoint exists, then resume
    config = _config(tmp_path, max_steps=6)
    sampled_at = manifest["sample"]["finished"]
    proc = _run(config, "sft")
    ckpts = work / "sft" / "checkpoints"
    deadline = time.monotonic() + 600

    def saved_steps() -> list[int]:  # complete checkpoints only (trainer_state.json is written last)
        return [int(f.parent.name.split("-")[1]) for f in ckpts.glob("checkpoint-*/trainer_state.json")]

    while not any(step >= 3 for step in saved_steps()):  # the first run stopped at step 2
        assert proc.poll() is None and time.monotonic() < deadline, "SFT ended before a checkpoint was written"
        time.sleep(0.2)
    assert len(list(ckpts.glob("checkpoint-*"))) <= 2  # save_total_limit 1 (+ one being written)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    out, err = _finish(_run(config, "sft"))
    assert "[sft] resuming" in err and re.search(r"resuming from \S*checkpoint-[3-5]\b", err), err[-2000:]
    assert "'sample': 'skipped'" in out and "'score': 'skipped'" in out and "'sft': 'ran'" in out
    manifest = json.loads((work / "manifest.json").read_text())
    assert manifest["sample"]["finished"] == sampled_at
    assert manifest["sft"]["info"]["global_step"] == 6
