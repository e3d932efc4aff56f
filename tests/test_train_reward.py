"""Reward-model scorer of the fusion plugin.

The reward model here is a tiny, randomly initialised LlamaForSequenceClassification that the test builds and
saves itself (no real reward model can be downloaded here); it uses the bundled SmolLM2 tokenizer and chat
template. What is tested is the scoring path, not reward quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fusebench_train.config import parse_config
from fusebench_train.prompts import load_prompts
from fusebench_train.reward import RewardModel
from fusebench_train.sampling import score

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from fusebench.models import load_source, resolve_model

    tokenizer = AutoTokenizer.from_pretrained(load_source(resolve_model(None))[0])
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    folder = tmp_path_factory.mktemp("tiny-rm")
    LlamaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_scores_are_batch_invariant_and_match_a_direct_forward(tiny_rm: Path) -> None:
    rm = RewardModel(str(tiny_rm), device="cpu")
    conv = [{"role": "user", "content": "Say hi."}]
    items = [(conv, "hi"), (conv, "Hello there, how are you doing on this fine day?"), (conv, "no")]
    batched = rm.score(items, batch_size=3)
    alone = [rm.score([it], batch_size=1)[0] for it in items]
    assert batched == pytest.approx(alone, abs=1e-4)
    assert len(set(round(x, 6) for x in batched)) == 3  # different responses, different rewards
    text = rm.tokenizer.apply_chat_template([*conv, {"role": "assistant", "content": "hi"}], tokenize=False)
    ids = rm.tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        direct = float(rm.model(**ids).logits[0, 0])
    assert batched[0] == pytest.approx(direct, abs=1e-4)


def test_instruction_prompts_are_scored_by_the_reward_model(tmp_path: Path, tiny_rm: Path) -> None:
    prompts = tmp_path / "chat.jsonl"
    prompts.write_text(json.dumps({"id": "c1", "prompt": "Name a colour."}) + "\n")
    cfg = parse_config(
        {
            "work_dir": str(tmp_path / "w"),
            "target": "smollm2-135m-instruct",
            "sources": [{"name": "s", "model": "smollm2-135m-instruct"}],
            "prompts": [
                {"path": str(prompts), "domain": "instruction", "prompt_field": "prompt", "target_field": None,
                 "id_field": "id"}
            ],
            "score": {"reward_model": str(tiny_rm), "device": "cpu"},
            "eval": {"suite": "demo"},
        }
    )  # fmt: skip
    rows = [
        {"prompt_id": "c1", "domain": "instruction", "source": "s", "index": i, "text": t, "n_tokens": 1}
        for i, t in enumerate(["Blue.", "Red is a colour."])
    ]
    scored = score(cfg, load_prompts(cfg), rows)
    expected = RewardModel(str(tiny_rm), device="cpu").score(
        [([{"role": "user", "content": "Name a colour."}], r["text"]) for r in rows]
    )
    assert [s.correct for s in scored] == [None, None]
    assert [s.score for s in scored] == pytest.approx(expected, abs=1e-5)
