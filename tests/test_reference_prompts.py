"""HumanEval, MBPP and MMLU-Pro prompts, token for token, against their references' renderings.

Each expected prompt is written out here from the reference's own rules (FuseEval's eval_plus/model.py
`make_raw_chat_prompt`, and its MC-Eval/evaluate_from_local.py zero-shot prompt with the Qwen2.5 system cut), on the
bundled SmolLM2 tokenizer with its own template and with a ChatML (Qwen2.5-style) and a Llama-3-style template.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fusebench.backends.base import GenParams
from fusebench.backends.chat import ChatTokenizer, render
from fusebench.backends.conventions import NO_DEFAULT_SYSTEM
from fusebench.backends.openai import OpenAIBackend
from fusebench.data import Item, load_items
from fusebench.models import resolve_model
from fusebench.prompts import build_conversation
from fusebench.spec import get_benchmark

# The reference's strings, as FuseEval's eval_plus/model.py and MC-Eval/evaluate_from_local.py have them
EVALPLUS_INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
)
EVALPLUS_RESPONSE = (
    "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:"
)
MAGIC = "-[[]]-this-is-really-our-highest-priority-[[]]-"
TIGER_ZERO_SHOT_TAIL = (
    "- For simple problems:\nDirectly provide the answer with minimal explanation.\n\n- For complex problems:\n"
    "Use this step-by-step format:\n## Step 1: [Concise description]\n[Brief explanation]\n## Step 2: [Concise "
    "description]\n[Brief explanation]\n\nRegardless of the approach, always conclude with:\nThe best answer is "
    "[the_answer_letter].\nwhere the [the_answer_letter] is the correct letter choice.\n\nAnswer: Let's think step by "
    "step."
)
SMOL_SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
# A ChatML template with a default system turn, as Qwen2.5's (tools left out)
CHATML_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\n" + QWEN_SYSTEM + "<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Llama-3's template shape: BOS, headers, content trimmed
LLAMA3_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


@pytest.fixture(scope="module")
def chat() -> ChatTokenizer:
    return ChatTokenizer(resolve_model(None))


def _with_template(chat: ChatTokenizer, template: str | None) -> Any:
    tokenizer = copy.deepcopy(chat.tokenizer)
    if template is not None:
        tokenizer.chat_template = template
    return tokenizer


def _items(benchmark: str, n: int) -> list[Item]:
    """The n items with the longest inputs (fences, quotes and indentation included)."""
    items = load_items(get_benchmark(benchmark)).items
    return sorted(items, key=lambda i: len(i.input), reverse=True)[:n]


def evalplus_reference(tokenizer: Any, task_prompt: str) -> str:
    """FuseEval's make_raw_chat_prompt, rule for rule."""
    user = f"{EVALPLUS_INSTRUCTION}\n```\n{task_prompt.strip()}\n```\n"
    response = f"{EVALPLUS_RESPONSE}\n```python\n{MAGIC}\n```\n"
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": user}, {"role": "assistant", "content": response}], tokenize=False
    )
    return str(rendered).split(MAGIC)[0]


def tiger_lab_reference(tokenizer: Any, row: dict[str, Any]) -> str:
    """FuseEval's zero-shot MMLU-Pro prompt with --chat_template, Qwen2.5 system cut included."""
    prompt = (
        "Please read the following multiple-choice questions and provide the most likely correct answer based on "
        "the options given.\n"
    )
    prompt += "Question:\n" + row["question"] + "\n" + "Options:\n"
    for i, option in enumerate(row["options"]):
        prompt += f"{'ABCDEFGHIJKLMNOP'[i]}. {option}\n"
    prompt += TIGER_ZERO_SHOT_TAIL
    text = str(
        tokenizer.apply_chat_template([{"content": prompt, "role": "user"}], tokenize=False, add_generation_prompt=True)
    )
    if "<|im_start|>system" in text:
        text = "<|im_start|>user" + text.split("<|im_start|>user", 1)[1]
    return text


def _assert_same_tokens(tokenizer: Any, ours: str, reference: str) -> None:
    assert ours == reference
    ids = tokenizer(reference, add_special_tokens=False)["input_ids"]
    assert tokenizer(ours, add_special_tokens=False)["input_ids"] == ids


@pytest.mark.parametrize("template", [None, CHATML_TEMPLATE, LLAMA3_TEMPLATE], ids=["smollm2", "chatml", "llama3"])
@pytest.mark.parametrize("benchmark", ["humaneval", "mbpp"])
def test_code_prompts_render_as_evalplus(chat: ChatTokenizer, benchmark: str, template: str | None) -> None:
    tokenizer = _with_template(chat, template)
    spec = get_benchmark(benchmark)
    for item in _items(benchmark, 8):
        ours = render(tokenizer, build_conversation(spec.prompt, item))
        _assert_same_tokens(tokenizer, ours, evalplus_reference(tokenizer, item.input))


def test_evalplus_prompt_written_out_on_the_bundled_template(chat: ChatTokenizer) -> None:
    item = load_items(get_benchmark("humaneval"), limit=1).items[0]
    expected = (
        f"{SMOL_SYSTEM}<|im_start|>user\n{EVALPLUS_INSTRUCTION}\n```\n{item.input.strip()}\n```\n<|im_end|>\n"
        f"<|im_start|>assistant\n{EVALPLUS_RESPONSE}\n```python\n"
    )
    conv = build_conversation(get_benchmark("humaneval").prompt, item)
    assert chat.encode(conv) == chat.tokenizer(expected, add_special_tokens=False)["input_ids"]


def test_evalplus_prompt_on_a_trimming_template_keeps_the_prefill_newline(chat: ChatTokenizer) -> None:
    tokenizer = _with_template(chat, LLAMA3_TEMPLATE)
    item = load_items(get_benchmark("mbpp"), limit=1).items[0]
    text = render(tokenizer, build_conversation(get_benchmark("mbpp").prompt, item))
    assert text.endswith(f"<|start_header_id|>assistant<|end_header_id|>\n\n{EVALPLUS_RESPONSE}\n```python\n")
    assert text.count(str(tokenizer.bos_token)) == 1


@pytest.mark.parametrize("template", [None, CHATML_TEMPLATE, LLAMA3_TEMPLATE], ids=["smollm2", "chatml", "llama3"])
def test_mmlu_pro_prompt_renders_as_tiger_lab_zero_shot(chat: ChatTokenizer, template: str | None) -> None:
    tokenizer = _with_template(chat, template)
    spec = get_benchmark("mmlu_pro")
    for item in _items("mmlu_pro", 8):
        ours = render(tokenizer, build_conversation(spec.prompt, item))
        _assert_same_tokens(tokenizer, ours, tiger_lab_reference(tokenizer, item.row))


def test_mmlu_pro_prompt_written_out_on_the_bundled_template(chat: ChatTokenizer) -> None:
    item = load_items(get_benchmark("mmlu_pro"), limit=1).items[0]
    options = "".join(f"{'ABCDEFGHIJ'[i]}. {o}\n" for i, o in enumerate(item.row["options"]))
    expected = (
        "<|im_start|>user\nPlease read the following multiple-choice questions and provide the most likely correct "
        f"answer based on the options given.\nQuestion:\n{item.row['question']}\nOptions:\n{options}"
        f"{TIGER_ZERO_SHOT_TAIL}<|im_end|>\n<|im_start|>assistant\n"
    )
    conv = build_conversation(get_benchmark("mmlu_pro").prompt, item)
    assert conv[0] == NO_DEFAULT_SYSTEM and SMOL_SYSTEM not in render(chat.tokenizer, conv)
    assert chat.encode(conv) == chat.tokenizer(expected, add_special_tokens=False)["input_ids"]


def test_reference_specs_generate_as_their_references() -> None:
    for benchmark in ("humaneval", "mbpp"):
        gen = get_benchmark(benchmark).generation
        assert gen["max_new_tokens"] == 2048 and gen["temperature"] == 0.0
        assert gen["stop"][-1] == "\n```" and {"\nprint(", "\n#", "\nif __name__"} <= set(gen["stop"])
    for benchmark in ("mmlu_pro", "mmlu_redux", "gpqa_diamond"):
        spec = get_benchmark(benchmark)
        assert spec.generation == {"max_new_tokens": 2048, "temperature": 0.0, "stop": ["Question:"]}
        assert spec.scorer == "choice_tiger_lab" and get_benchmark(f"{benchmark}_lenient").scorer == "choice"
        assert get_benchmark(f"{benchmark}_lenient").generation_id == benchmark


def test_openai_backend_sends_a_prefill_as_a_continued_final_message() -> None:
    backend = OpenAIBackend("m", "http://127.0.0.1:9/v1")
    item = load_items(get_benchmark("humaneval"), limit=1).items[0]
    body = backend.request_body(build_conversation(get_benchmark("humaneval").prompt, item), GenParams(), 0)
    assert body["messages"][-1] == {"role": "assistant", "content": f"{EVALPLUS_RESPONSE}\n```python\n"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    mmlu = load_items(get_benchmark("mmlu_pro"), limit=1).items[0]
    body = backend.request_body(build_conversation(get_benchmark("mmlu_pro").prompt, mmlu), GenParams(), 0)
    assert [m["role"] for m in body["messages"]] == ["user"] and "continue_final_message" not in body
