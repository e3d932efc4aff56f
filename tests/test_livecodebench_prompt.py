"""LiveCodeBench as FuseEval's lcb_runner fork runs a chat model (LMStyle.LLaMa3): the prompt token for token, the
sampling settings, and the code extraction (first fenced block) beside fusebench's own (livecodebench_lenient).

The expected prompts are written out here from lcb_runner's rules (prompts/code_generation.py:
PromptConstants.SYSTEM_MESSAGE_GENERIC as the system turn, get_generic_question_template_answer as the user turn,
the tokenizer's chat template with the generation prompt), on the bundled SmolLM2 template and on ChatML and
Llama-3-style templates. The problems are the LiveCodeBench-format fixtures (tests/fixtures/livecodebench), served in
place of the hub.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusebench.backends.chat import ChatTokenizer, render
from fusebench.data import Item, load_items
from fusebench.models import resolve_model
from fusebench.prompts import build_conversation
from fusebench.scorers.base import ScoreInput, get_scorer
from fusebench.scorers.livecodebench import reference_code
from fusebench.spec import get_benchmark
from tests.test_reference_prompts import CHATML_TEMPLATE, LLAMA3_TEMPLATE, SMOL_SYSTEM

FIXTURES = Path(__file__).parent / "fixtures" / "livecodebench"
F = "```"

# lcb_runner's strings (FuseEval's fork, lcb_runner/prompts/code_generation.py)
SYSTEM_MESSAGE_GENERIC = (
    "You are an expert Python programmer. You will be given a question (problem specification) and will generate a "
    "correct Python program that matches the specification and passes all tests. You will NOT return anything except "
    "for the program."
)
FORMAT_WITH_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose your code within "
    "delimiters."
)
FORMAT_STDIN = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the sample "
    "inputs). Enclose your code within delimiters as follows."
)


def lcb_user_message(question: str, starter_code: str) -> str:
    """get_generic_question_template_answer, rule for rule."""
    if starter_code:
        fmt = f"### Format: {FORMAT_WITH_STARTER}\n{F}python\n{starter_code}\n{F}\n\n"
    else:
        fmt = f"### Format: {FORMAT_STDIN}\n{F}python\n# YOUR CODE HERE\n{F}\n\n"
    return f"### Question:\n{question}\n\n{fmt}### Answer: (use the provided format with backticks)\n\n"


def lcb_reference(tokenizer: Any, row: dict[str, Any]) -> str:
    """format_prompt_generation for LMStyle.LLaMa3: system + user turn through the model's chat template."""
    messages = [
        {"role": "system", "content": SYSTEM_MESSAGE_GENERIC},
        {"role": "user", "content": lcb_user_message(row["question_content"], row["starter_code"])},
    ]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


@pytest.fixture
def items(monkeypatch: pytest.MonkeyPatch) -> dict[str, Item]:
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo_id, filename, **_: str(FIXTURES / filename))
    return {i.id: i for i in load_items(get_benchmark("livecodebench")).items}


@pytest.fixture(scope="module")
def chat() -> ChatTokenizer:
    return ChatTokenizer(resolve_model(None))


@pytest.mark.parametrize("template", [None, CHATML_TEMPLATE, LLAMA3_TEMPLATE], ids=["smollm2", "chatml", "llama3"])
def test_prompts_render_as_lcb_runner(chat: ChatTokenizer, items: dict[str, Item], template: str | None) -> None:
    tokenizer = copy.deepcopy(chat.tokenizer)
    if template is not None:
        tokenizer.chat_template = template
    spec = get_benchmark("livecodebench")
    assert {items[i].row["testtype"] for i in items} == {"stdin", "functional"}
    for item in items.values():
        ours = render(tokenizer, build_conversation(spec.prompt, item))
        reference = lcb_reference(tokenizer, item.row)
        assert ours == reference
        ids = tokenizer(reference, add_special_tokens=False)["input_ids"]
        assert tokenizer(ours, add_special_tokens=False)["input_ids"] == ids


def test_stdin_and_functional_layouts_written_out(chat: ChatTokenizer, items: dict[str, Item]) -> None:
    spec = get_benchmark("livecodebench")
    stdin, functional = items["abc901_b"], items["3400"]
    assert stdin.row["testtype"] == "stdin" and functional.row["testtype"] == "functional"
    system = f"<|im_start|>system\n{SYSTEM_MESSAGE_GENERIC}<|im_end|>\n"
    expected_stdin = (
        f"{system}<|im_start|>user\n### Question:\n{stdin.row['question_content']}\n\n### Format: {FORMAT_STDIN}\n"
        f"{F}python\n# YOUR CODE HERE\n{F}\n\n### Answer: (use the provided format with backticks)\n\n<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    starter = "class Solution:\n    def maxPairSum(self, nums: List[int]) -> int:\n        "  # trailing spaces kept
    assert functional.row["starter_code"] == starter
    expected_functional = (
        f"{system}<|im_start|>user\n### Question:\n{functional.row['question_content']}\n\n### Format: "
        f"{FORMAT_WITH_STARTER}\n{F}python\n{starter}\n{F}\n\n### Answer: (use the provided format with backticks)\n\n"
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    for item, expected in ((stdin, expected_stdin), (functional, expected_functional)):
        text = render(chat.tokenizer, build_conversation(spec.prompt, item))
        assert text == expected and SMOL_SYSTEM not in text


def test_generation_follows_lcb_runner_defaults() -> None:
    spec, lenient = get_benchmark("livecodebench"), get_benchmark("livecodebench_lenient")
    assert spec.generation == {"max_new_tokens": 2000, "temperature": 0.2, "top_p": 0.95, "n": 10, "stop": ["###"]}
    assert spec.prompt.system == SYSTEM_MESSAGE_GENERIC
    assert (spec.scorer, lenient.scorer, lenient.generation_id) == (
        "livecodebench",
        "livecodebench_lenient",
        "livecodebench",
    )


# --- extraction -------------------------------------------------------------------------------------------

SOLUTION = "import sys\nd = sys.stdin.read().split()\nprint(sum(map(int, d[1:])))"
EXAMPLE = "print(sum([1, 2, 3]))"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (f"{F}python\n{SOLUTION}\n{F}", SOLUTION),
        (f"Here it is:\n{F}python\n{SOLUTION}\n{F}\nIt reads all numbers.", SOLUTION),
        (f"{F}Python\n{SOLUTION}\n{F}", SOLUTION),  # any line with a fence opens, whatever the language
        (f"{F}\n{SOLUTION}\n{F}", SOLUTION),
        (f"For example:\n{F}python\n{EXAMPLE}\n{F}\nSolution:\n{F}python\n{SOLUTION}\n{F}", EXAMPLE),  # the first
        (f"{F}python\n{SOLUTION}", ""),  # an unclosed block (cut at the token limit): nothing
        (SOLUTION, ""),  # no fence: nothing
        (f"Use {F}sys.stdin{F}:\n{SOLUTION}\n{F}", SOLUTION),  # a line holding an inline fence counts as one
    ],
)
def test_reference_extraction_takes_the_first_fenced_block(output: str, expected: str) -> None:
    assert reference_code(output) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.text(st.characters(blacklist_characters="`\r"), max_size=80),
    st.text(st.characters(blacklist_characters="`\r"), max_size=200),
    st.text(st.characters(blacklist_characters="`\r"), max_size=80),
)
def test_reference_extraction_returns_the_block_verbatim(before: str, code: str, after: str) -> None:
    assert reference_code(f"{before}\n{F}python\n{code}\n{F}\n{after}") == code


@pytest.mark.timeout(120)
def test_headline_and_lenient_scores_on_stdin_and_functional_problems(items: dict[str, Item]) -> None:
    """The solution in a second block fails the reference's extraction and passes fusebench's; an answer without a
    fence fails the reference (nothing extracted) and runs as a whole program under fusebench's."""
    pair = "class Solution:\n    def maxPairSum(self, nums):\n        a, b = sorted(nums)[-2:]\n        return a + b"
    cases = [
        ("abc901_b", f"{F}python\n{SOLUTION}\n{F}", 1.0, 1.0),
        ("abc901_b", f"For example:\n{F}python\n{EXAMPLE}\n{F}\nSolution:\n{F}python\n{SOLUTION}\n{F}", 0.0, 1.0),
        ("abc901_b", SOLUTION, 0.0, 1.0),
        ("3400", f"{F}python\n{pair}\n{F}", 1.0, 1.0),
        ("3400", f"Usage:\n{F}python\nSolution().maxPairSum([1, 2])\n{F}\n{F}python\n{pair}\n{F}", 0.0, 1.0),
    ]
    headline, lenient = get_scorer("livecodebench"), get_scorer("livecodebench_lenient")
    for item_id, output, want_headline, want_lenient in cases:
        row = items[item_id].row
        got = (headline(ScoreInput(output, item_id, row)).value, lenient(ScoreInput(output, item_id, row)).value)
        assert got == (want_headline, want_lenient), (item_id, output)
    nothing = headline(ScoreInput(SOLUTION, "abc901_b", items["abc901_b"].row))
    assert (nothing.extracted, nothing.reason) == (None, "extraction_failed")
