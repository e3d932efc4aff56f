"""GSM8K, MATH, MATH-500 and AMC23 prompts, token for token, against FuseEval's Math-Eval prompts.

FuseEval's Math-Eval (Qwen2.5-Math's evaluation) hard-codes one prompt per model family (utils.py PROMPT_TEMPLATES,
zero-shot: the question, stripped by parse_question, in the input template) and sends it to vLLM as plain text; stop
words are the family's end-of-turn tokens only; greedy, 2,048 tokens (max_tokens_per_call). The Qwen2.5 and Llama-3
prompts are what a ChatML and a Llama-3 chat template render from fusebench's spec (the \\boxed{} instruction as the
system turn), so they are compared here on those templates and on the bundled SmolLM2 one (ChatML with the system
turn given). Gemma-2's prompt puts the instruction after the question in the user turn: not followed (README).
"""

from __future__ import annotations

import copy

import pytest

from fusebench.backends.chat import ChatTokenizer, render
from fusebench.data import load_items
from fusebench.models import resolve_model
from fusebench.prompts import build_conversation
from fusebench.spec import get_benchmark
from tests.test_reference_prompts import CHATML_TEMPLATE, LLAMA3_TEMPLATE

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
# FuseEval Math-Eval/utils.py PROMPT_TEMPLATES, input templates after str.format ({{}} -> {})
QWEN25_MATH_COT = (
    f"<|im_start|>system\n{INSTRUCTION}<|im_end|>\n<|im_start|>user\n{{input}}<|im_end|>\n<|im_start|>assistant\n"
)
LLAMA3_MATH_COT = (
    f"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{INSTRUCTION}<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\n{input}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
)
QUESTION_FIELD = {"gsm8k": "question", "math": "problem", "math500": "problem", "amc23": "question"}


@pytest.fixture(scope="module")
def chat() -> ChatTokenizer:
    return ChatTokenizer(resolve_model(None))


@pytest.mark.parametrize("template", [None, CHATML_TEMPLATE, LLAMA3_TEMPLATE], ids=["smollm2", "chatml", "llama3"])
@pytest.mark.parametrize("benchmark", ["gsm8k", "math", "math500", "amc23"])
def test_math_prompts_render_as_math_eval(chat: ChatTokenizer, benchmark: str, template: str | None) -> None:
    tokenizer = copy.deepcopy(chat.tokenizer)
    if template is not None:
        tokenizer.chat_template = template
    llama3 = LLAMA3_MATH_COT.replace("<|begin_of_text|>", str(tokenizer.bos_token))
    reference = llama3 if template == LLAMA3_TEMPLATE else QWEN25_MATH_COT
    spec = get_benchmark(benchmark)
    items = load_items(spec).items
    # the longest questions, and any with surrounding whitespace (AMC23 has one), which the reference strips
    padded = [i for i in items if i.input != i.input.strip()]
    chosen = sorted(items, key=lambda i: len(i.input), reverse=True)[:6] + padded
    for item in chosen:
        question = str(item.row[QUESTION_FIELD[benchmark]]).strip()
        expected = reference.replace("{input}", question)
        ours = render(tokenizer, build_conversation(spec.prompt, item))
        assert ours == expected
        ids = tokenizer(expected, add_special_tokens=False)["input_ids"]
        assert tokenizer(ours, add_special_tokens=False)["input_ids"] == ids


def test_math_generation_as_math_eval() -> None:
    for benchmark in ("gsm8k", "math", "math500", "amc23"):
        spec = get_benchmark(benchmark)
        assert spec.generation == {"max_new_tokens": 2048, "temperature": 0.0}  # stops: the template's EOS only
        assert spec.prompt.system == INSTRUCTION and spec.prompt.strip_input
