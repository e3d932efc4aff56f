"""Judge prompts render as the reference implementations render them (spot checks of exact text)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusebench.errors import UsageError
from fusebench.judging import prompts
from tests.conftest import SHARED_DATA

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "data"
ALIGNBENCH = SHARED_DATA / "alignbench"


def test_arena_hard_games_follow_judge_config() -> None:
    prompt = prompts.ArenaHardPrompt.load(BENCH / "arena_hard" / "judge_config.yaml")
    conv = prompt.messages("What is {x}?", "BASELINE", "MODEL")
    assert [m["role"] for m in conv] == ["system", "user"]
    assert conv[0]["content"].startswith("Please act as an impartial judge and evaluate the quality of the responses")
    assert conv[0]["content"].endswith('Example output: "My final verdict is tie: [[A=B]]".')
    assert conv[1]["content"] == (
        "<|User Prompt|>\nWhat is {x}?\n\n<|The Start of Assistant A's Answer|>\nBASELINE\n"
        "<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\nMODEL\n"
        "<|The End of Assistant B's Answer|>"
    )
    again = prompts.arena_hard_continuation(conv, "my long judgment")
    assert again[:2] == conv
    assert again[2:] == [
        {"role": "assistant", "content": "my long judgment"},
        {"role": "user", "content": "continue your judgment and finish by outputting a final verdict label"},
    ]


def test_mt_bench_prompts_pick_fastchat_templates() -> None:
    p = prompts.MTBenchPrompts.load(BENCH / "mt_bench" / "judge_prompts.jsonl")
    writing = p.messages("writing", 1, ["Q1 {a}", "Q2"], ["A1 {b}", "A2"])
    assert writing[0] == {"role": "system", "content": "You are a helpful assistant."}
    assert writing[1]["content"].startswith("[Instruction]\nPlease act as an impartial judge")
    assert writing[1]["content"].endswith(
        "[Question]\nQ1 {a}\n\n[The Start of Assistant's Answer]\nA1 {b}\n[The End of Assistant's Answer]"
    )
    math = p.messages("math", 1, ["Q1", "Q2"], ["A1", "A2"], ["R1", "R2"])
    assert "[The Start of Reference Answer]\nR1\n[The End of Reference Answer]" in math[1]["content"]
    second = p.messages("reasoning", 2, ["Q1", "Q2"], ["A1", "A2"], ["R1", "R2"])
    assert second[0]["content"].startswith("Please act as an impartial judge and evaluate the quality of the response")
    assert "You evaluation should focus on the assistant's answer to the second question." in second[0]["content"]
    assert "### User:\nQ2\n\n### Reference answer:\nR2" in second[1]["content"]
    assert second[1]["content"].endswith("### Assistant A:\nA2\n\n<|The End of Assistant A's Conversation with User|>")
    general2 = p.messages("roleplay", 2, ["Q1", "Q2"], ["A1", "A2"])
    assert "Reference" not in general2[1]["content"] and "### Assistant A:\nA1" in general2[1]["content"]
    with pytest.raises(UsageError, match="reference answer"):
        p.messages("coding", 1, ["Q"], ["A"], None)


def _alpaca_switch_by_alpaca_eval(instructions: list[str]) -> list[bool]:
    """alpaca_eval's own switch decision, from the processor its pairwise annotators use (seed 0)."""
    from alpaca_eval.processors import RandomSwitchTwoColumnsProcessor

    proc = RandomSwitchTwoColumnsProcessor(
        two_columns_to_switch=["output_1", "output_2"],
        random_seed_columns=["instruction"],
        _switch_column="is_switched_outputs",
        seed=0,
    )
    frame = pd.DataFrame({"instruction": instructions, "output_1": "ref", "output_2": "model"})
    return [bool(x) for x in proc.preprocess(frame)["is_switched_outputs"]]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=8))
def test_alpaca_eval_switch_matches_alpaca_eval(instructions: list[str]) -> None:
    assert [prompts.alpaca_eval_switched(i) for i in instructions] == _alpaca_switch_by_alpaca_eval(instructions)


def test_alpaca_eval_prompt_is_alpaca_eval_clf() -> None:
    template = (BENCH / "alpaca_eval2" / "alpaca_eval_clf.txt").read_text()
    conv = prompts.alpaca_eval_messages(template, "Say {hi}", "FIRST", "SECOND")
    assert [m["role"] for m in conv] == ["system", "user"]
    assert conv[0]["content"].startswith("You are a highly efficient assistant, who evaluates and selects")
    user = conv[1]["content"]
    assert '"instruction": """Say {hi}""",' in user
    assert '"model_identifier": "m",\n        "output": """FIRST"""' in user
    assert '"model_identifier": "M",\n        "output": """SECOND"""' in user
    assert user.endswith("m or M.\n\n## Best Model Identifier")


@pytest.mark.shared_data("alignbench")  # AlignBench states no license: fusebench ships none of it
def test_alignbench_prompt_from_flat_copy_and_from_repo_layout(tmp_path: Path) -> None:
    flat = prompts.AlignBenchPrompt.load(ALIGNBENCH)
    conv = flat.messages("专业能力", "音乐", "问题？", "参考", "回答")
    text = conv[0]["content"]
    assert conv[0]["role"] == "user" and len(conv) == 1
    assert text.startswith("你是一个擅长评价文本质量的助手。\n")
    assert "由于您评估的回答类型是专业能力，因此你需要从下面的几个维度对回答进行评估:\n1. 事实正确性: " in text
    assert "4. 完备性: 回答是否提供了足够的信息和细节，以满足用户的需求，是否遗漏了重要的方面。\n我们会给您提供" in text
    assert "{'维度一': 打分, '维度二': 打分, ..., '综合得分': 打分}" in text  # the escaped braces rendered once
    assert text.endswith(
        "用户的提问： 问题？\n[参考答案开始]\n参考\n[参考答案结束]\n[助手的答案开始]\n回答\n[助手的答案结束]\n"
    )
    # a THUDM/AlignBench checkout: config/*.json and the prompt inside judge.py
    (tmp_path / "config").mkdir()
    for name in ("dimension_set", "dimension_definition", "subcategory_question_mapping"):
        shutil.copy(ALIGNBENCH / f"config_{name}.json", tmp_path / "config" / f"{name}.json")
    template = (ALIGNBENCH / "judge_prompt_template.txt").read_text()
    (tmp_path / "judge.py").write_text(f"import re\n\ndef prompt_construct():\n    base_prompt = {template!r}\n")
    repo = prompts.AlignBenchPrompt.load(tmp_path)
    assert repo.messages("专业能力", "音乐", "问题？", "参考", "回答") == conv
    assert (
        repo.dimensions("证明") == json.loads((ALIGNBENCH / "config_dimension_set.json").read_text())["逻辑推理型回答"]
    )
    with pytest.raises(UsageError, match="subcategory"):
        repo.messages("x", "no such subcategory", "q", "r", "a")
