"""The CPU decode speedups (GQA attention without KV copies, in-place KV cache) against stock transformers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.cache_utils import DynamicLayer

from fusebench.backends.hf import HFBackend
from fusebench.backends.hf_decode import CPU_ATTENTION, PreallocatedLayer, preallocated_cache
from fusebench.models import load_source, resolve_model

QUESTIONS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "What is 12 times 7?",
    "A train leaves at 3 pm and travels 60 miles per hour for 2.5 hours. How far does it go?",
    "Name three primary colors.",
]


# --- the cache layer, against transformers' DynamicLayer -------------------------------------------------------
_op = st.one_of(
    st.tuples(st.just("update"), st.integers(1, 5)),
    st.tuples(st.just("crop"), st.integers(-3, -1)),
    st.tuples(st.just("select"), st.lists(st.integers(0, 1), min_size=2, max_size=2)),
    st.tuples(st.just("repeat"), st.integers(1, 2)),
)


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(_op, min_size=1, max_size=12), capacity=st.integers(1, 8))
def test_preallocated_layer_holds_what_a_dynamic_layer_holds(ops: list[tuple[str, Any]], capacity: int) -> None:
    torch.manual_seed(0)
    ours, stock = PreallocatedLayer(capacity), DynamicLayer()
    batch = 2
    for op, arg in ops:
        if op == "update":
            k, v = torch.randn(batch, 3, arg, 4), torch.randn(batch, 3, arg, 4)
            got, want = ours.update(k, v), stock.update(k, v)
            assert all(g.equal(w) for g, w in zip(got, want, strict=True))
        elif stock.get_seq_length() == 0:
            continue
        elif op == "crop" and stock.get_seq_length() > -arg:
            ours.crop(arg)
            stock.crop(arg)
        elif op == "select":
            index = torch.tensor(arg[:batch])
            ours.batch_select_indices(index)
            stock.batch_select_indices(index)
            batch = len(index)
        elif op == "repeat":
            ours.batch_repeat_interleave(arg)
            stock.batch_repeat_interleave(arg)
            batch *= arg
        assert ours.get_seq_length() == stock.get_seq_length()
        if stock.get_seq_length():
            assert ours.keys is not None and ours.values is not None
            assert ours.keys.equal(stock.keys) and ours.values.equal(stock.values)


# --- the real model: same tokens as stock transformers ----------------------------------------------------------
@pytest.fixture(scope="module")
def model_and_prompts() -> Iterator[tuple[Any, dict[str, torch.Tensor]]]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    path, _ = load_source(resolve_model(None))
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
        for q in QUESTIONS
    ]
    enc = tokenizer(prompts, padding=True, padding_side="left", return_tensors="pt", add_special_tokens=False)
    assert enc["attention_mask"].min() == 0  # the padded case is the one that matters
    yield model, enc
    torch.set_num_threads(threads)


def _generate(model: Any, enc: dict[str, torch.Tensor], fast: bool, **kwargs: Any) -> torch.Tensor:
    model.set_attn_implementation(CPU_ATTENTION if fast else "sdpa")
    extra = {"past_key_values": preallocated_cache(model.config, enc["input_ids"].shape[1] + 40)} if fast else {}
    torch.manual_seed(7)
    with torch.inference_mode():
        out: torch.Tensor = model.generate(**enc, max_new_tokens=40, pad_token_id=0, **extra, **kwargs)
    return out


@pytest.mark.slow
def test_fast_decode_gives_stock_greedy_tokens(model_and_prompts: tuple[Any, dict[str, torch.Tensor]]) -> None:
    model, enc = model_and_prompts
    assert _generate(model, enc, fast=True, do_sample=False).equal(_generate(model, enc, fast=False, do_sample=False))


@pytest.mark.slow
def test_fast_decode_gives_stock_samples(model_and_prompts: tuple[Any, dict[str, torch.Tensor]]) -> None:
    model, enc = model_and_prompts
    sampling = {"do_sample": True, "temperature": 0.8, "top_p": 0.95, "num_return_sequences": 3}
    fast = _generate(model, enc, fast=True, **sampling)
    assert fast.shape[0] == 3 * len(QUESTIONS)
    assert fast.equal(_generate(model, enc, fast=False, **sampling))


@pytest.mark.slow
def test_backend_uses_the_fast_path_on_cpu() -> None:
    backend = HFBackend(resolve_model(None), batch_size=2, dtype="float32")
    assert backend.model.config._attn_implementation == CPU_ATTENTION
