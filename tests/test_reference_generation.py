"""A prefill and stop strings honoured by the HF backend on the real bundled model, at batch > 1."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from fusebench.backends.base import Completion, Conversation, GenParams
from fusebench.backends.hf import HFBackend
from fusebench.data import load_items
from fusebench.models import resolve_model
from fusebench.prompts import build_conversation
from fusebench.scorers.sanitize import answer_text
from fusebench.spec import get_benchmark

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TOKENS = 96


@pytest.fixture(scope="module")
def backend() -> Iterator[HFBackend]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield HFBackend(resolve_model(None), batch_size=8)
    torch.set_num_threads(threads)


def _run(backend: HFBackend, convs: list[Conversation], params: GenParams) -> dict[int, Completion]:
    return {c.index: c for c in backend.generate(convs, params)}


def test_prefill_and_stops_at_batch_8_cut_where_the_unstopped_text_first_stops(backend: HFBackend) -> None:
    spec = get_benchmark("humaneval")
    items = load_items(spec, limit=8).items
    convs = [build_conversation(spec.prompt, item) for item in items]
    stops = tuple(spec.generation["stop"])
    stopped = _run(backend, convs, GenParams(max_new_tokens=TOKENS, stop=stops))
    free = _run(backend, convs, GenParams(max_new_tokens=TOKENS))
    assert sorted(stopped) == list(range(len(convs)))
    cut_by_stop = 0
    for i, done in stopped.items():
        assert done.prompt_tokens == len(backend.chat.encode(convs[i]))
        text = free[i].text
        cuts = [p for p in (text.find(s) for s in stops) if p >= 0]
        if cuts:  # the stop text ends the answer and is not part of it
            cut_by_stop += 1
            assert done.text == text[: min(cuts)] and done.finish_reason == "stop"
            assert done.completion_tokens < free[i].completion_tokens
        else:
            assert done.text == text and done.finish_reason == free[i].finish_reason
        assert not any(s in done.text for s in stops)
    assert cut_by_stop >= 2  # a 135M model writes prints, comments or a closing fence after its function
    # the model continued the prefill: its answer is the body of the open ```python fence
    scored = answer_text(get_benchmark("humaneval_raw"), items[0].row, stopped[0].text)
    assert scored == stopped[0].text.replace("\t", "    ").split("```")[0]


def test_prefilled_answers_do_not_depend_on_the_batch(backend: HFBackend) -> None:
    spec = get_benchmark("mbpp")
    convs = [build_conversation(spec.prompt, item) for item in load_items(spec, limit=3).items]
    params = GenParams(max_new_tokens=40, stop=tuple(spec.generation["stop"]))
    together = {i: c.text for i, c in _run(backend, convs, params).items()}
    alone = {i: next(iter(backend.generate([conv], params))).text for i, conv in enumerate(convs)}
    assert together == alone
