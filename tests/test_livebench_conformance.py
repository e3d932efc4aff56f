"""LiveBench-0831 as LiveBench's own generation scripts send it (LiveBench/LiveBench, `livebench/gen_model_answer.py`
of the 2024-08-31 era, commit 1264bb0e): for each question, every string of its `turns` in order as a user message
of the model's conversation template (no system text of LiveBench's own; the template's default one, if any, stays),
the model's answer appended after each turn; temperature 0.0 (hard-coded, greedy), `--max-new-token` 4096, one
choice; the judgment scores the answer to the last turn. The expected conversations are written out here from those
rules and rendered token for token on the bundled SmolLM2 template and on ChatML and Llama-3-style templates.

Data: the LiveBench-schema fixtures of tests/test_livebench_bench.py (tests/fixtures/livebench{,_extra}), read
through the local-folder mechanism (FUSEBENCH_LIVEBENCH_DIR); the real questions are on the hub, see the last test.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from fusebench.backends.chat import ChatTokenizer, render
from fusebench.data import Item, load_items
from fusebench.errors import UsageError
from fusebench.models import resolve_model
from fusebench.plan import gen_params
from fusebench.preparers import prepare_livebench
from fusebench.prompts import build_conversation
from fusebench.spec import get_benchmark
from tests.test_reference_prompts import CHATML_TEMPLATE, LLAMA3_TEMPLATE, SMOL_SYSTEM

FIXTURES = Path(__file__).parent / "fixtures"
ENV = "FUSEBENCH_LIVEBENCH_DIR"


def _rows() -> list[dict[str, Any]]:
    files = (FIXTURES / "livebench" / "question.jsonl", FIXTURES / "livebench_extra" / "question.jsonl")
    return [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def items(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Item]:
    for name in ("livebench", "livebench_extra"):
        (tmp_path / name).mkdir()
        shutil.copy(FIXTURES / name / "question.jsonl", tmp_path / name / "question.jsonl")
    monkeypatch.setenv(ENV, str(tmp_path))
    loaded = load_items(get_benchmark("livebench")).items
    assert len(loaded) >= 17
    return loaded


def livebench_first_turn(row: dict[str, Any]) -> list[dict[str, str]]:
    """gen_model_answer's conversation before the first answer: turns[0] as the user message, nothing else."""
    return [{"role": "user", "content": row["turns"][0]}]


@pytest.fixture(scope="module")
def chat() -> ChatTokenizer:
    return ChatTokenizer(resolve_model(None))


@pytest.mark.parametrize("template", [None, CHATML_TEMPLATE, LLAMA3_TEMPLATE], ids=["smollm2", "chatml", "llama3"])
def test_every_item_renders_as_livebench_sends_it(chat: ChatTokenizer, items: list[Item], template: str | None) -> None:
    tokenizer = copy.deepcopy(chat.tokenizer)
    if template is not None:
        tokenizer.chat_template = template
    spec = get_benchmark("livebench")
    raw = {r["question_id"]: r for r in _rows()}
    for item in items:
        conv = build_conversation(spec.prompt, item)
        assert conv == livebench_first_turn(raw[item.id])
        ours = render(tokenizer, conv)
        reference = str(tokenizer.apply_chat_template(livebench_first_turn(raw[item.id]), tokenize=False,
                                                      add_generation_prompt=True))  # fmt: skip
        assert ours == reference
        ids = tokenizer(reference, add_special_tokens=False)["input_ids"]
        assert tokenizer(ours, add_special_tokens=False)["input_ids"] == ids


def test_smollm2_rendering_written_out(chat: ChatTokenizer, items: list[Item]) -> None:
    """The template's default system turn stays, as LiveBench's conversation template keeps its own."""
    spec = get_benchmark("livebench")
    item = items[0]
    expected = f"{SMOL_SYSTEM}<|im_start|>user\n{item.row['turns'][0]}<|im_end|>\n<|im_start|>assistant\n"
    assert render(chat.tokenizer, build_conversation(spec.prompt, item)) == expected


def test_generation_settings_are_livebench_defaults(items: list[Item]) -> None:
    spec = get_benchmark("livebench")
    assert spec.turns == 1 and spec.prompt.system is None and spec.prompt.prefill in (None, "")
    assert spec.prompt.default_system != "drop"
    params = gen_params(spec.id, spec.generation)
    assert (params.temperature, params.max_new_tokens, params.n, params.stop) == (0.0, 4096, 1, ())
    assert spec.generation == {"max_new_tokens": 4096, "temperature": 0.0}
    assert all(len(item.row["turns"]) == 1 for item in items)  # single-turn: the first turn is the last one


def test_a_multi_turn_question_is_refused_not_truncated() -> None:
    """LiveBench would send every turn and score the last answer; fusebench sends one turn, so it refuses a
    multi-turn question of the selected release instead of silently scoring the answer to turns[0]."""
    spec = get_benchmark("livebench")
    row = next(r for r in _rows() if r["question_id"] == "amps1")
    with pytest.raises(UsageError, match=r"amps1.*2 turns"):
        prepare_livebench([{**row, "turns": [row["turns"][0], "Now explain."]}], spec)


def test_real_0831_questions_are_single_turn() -> None:
    """On the real hub data (not available offline): every selected question has one turn."""
    if not os.environ.get(ENV):
        pytest.skip(f"the real LiveBench questions are on the hub (livebench/<category>); set {ENV} to a copy")
    assert all(len(item.row["turns"]) == 1 for item in load_items(get_benchmark("livebench")).items)
