"""The HF backend on the real bundled model (offline; converts the GGUF once into the user's fusebench cache)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from fusebench.backends.base import Conversation, GenParams
from fusebench.backends.hf import HFBackend, pick_device, pick_dtype
from fusebench.backends.hf_sampling import SAMPLER_VERSION
from fusebench.errors import UsageError
from fusebench.models import resolve_model

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PROMPTS: list[Conversation] = [
    [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Count from 1 to 5."}],
    [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread in a small village."}],
]


@pytest.fixture(scope="module")
def backend() -> Iterator[HFBackend]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tests share the CPU with other tests; one thread avoids OpenMP oversubscription
    yield HFBackend(resolve_model(None), batch_size=3)
    torch.set_num_threads(threads)


def _by_index(backend: HFBackend, convs: list[Conversation], params: GenParams) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for c in backend.generate(convs, params):
        out.setdefault(c.index, []).append(c.text)
    return out


def test_greedy_generation_returns_one_completion_per_prompt(backend: HFBackend) -> None:
    params = GenParams(max_new_tokens=24)
    done = list(backend.generate(PROMPTS, params))
    assert sorted(c.index for c in done) == [0, 1, 2]
    for c in done:
        assert c.text.strip()
        assert c.prompt_tokens == len(backend.chat.encode(PROMPTS[c.index]))
        assert 0 < c.completion_tokens <= 24
        assert c.finish_reason in {"stop", "length"}
        assert c.latency_s > 0 and c.meta["batch_size"] == 3
    story = next(c for c in done if c.index == 2)
    assert (story.finish_reason, story.completion_tokens) == ("length", 24)
    assert "paris" in next(c for c in done if c.index == 0).text.lower()


def test_greedy_is_deterministic_and_independent_of_batch_size(backend: HFBackend) -> None:
    # longer generations over six prompts: at bfloat16 on CPU a row's tokens depend on its batch (that is why
    # 'auto' means float32 there); at the default dtype a resumed run must regenerate exactly what it lost
    convs = PROMPTS + [
        [{"role": "user", "content": f"Explain step by step: what is {n} times {n + 3}?"}] for n in (7, 12, 31)
    ]
    params = GenParams(max_new_tokens=64)
    outputs = {}
    for size in (6, 4, 1):
        backend.batch_size = size
        try:
            outputs[size] = _by_index(backend, convs, params)
        finally:
            backend.batch_size = 3
    assert outputs[6] == outputs[4] == outputs[1]
    assert _by_index(backend, convs, params) == outputs[6]


def test_stop_strings_truncate_and_end_generation(backend: HFBackend) -> None:
    conv = [PROMPTS[1]]
    full = next(iter(backend.generate(conv, GenParams(max_new_tokens=40))))
    assert "3" in full.text
    cut = next(iter(backend.generate(conv, GenParams(max_new_tokens=40, stop=("3",)))))
    assert cut.finish_reason == "stop"
    assert "3" not in cut.text and full.text.startswith(cut.text)
    assert cut.completion_tokens < full.completion_tokens


def test_sampling_yields_n_seeded_samples_per_prompt(backend: HFBackend) -> None:
    params = GenParams(max_new_tokens=8, temperature=1.0, top_p=0.95, n=2, seed=7)
    done = list(backend.generate(PROMPTS[:2], params))
    assert sorted((c.index, c.meta["sample"]) for c in done) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    again = list(backend.generate(PROMPTS[:2], params))
    assert [c.text for c in again] == [c.text for c in done]


def test_a_sample_does_not_depend_on_its_batch_or_neighbours(backend: HFBackend) -> None:
    # a killed run resumes with the unfinished prompts in other batches: each must draw what it would have drawn
    params = GenParams(max_new_tokens=24, temperature=0.8, top_p=0.95, n=2, seed=3)
    together = _by_index(backend, PROMPTS, params)  # batch 3: one prompt (x2 samples) per batch
    backend.batch_size = 6
    try:
        wider = _by_index(backend, PROMPTS, params)  # all three prompts in one batch
        alone = _by_index(backend, PROMPTS[2:], params)[0]  # one prompt without its neighbours
    finally:
        backend.batch_size = 3
    assert wider == together and alone == together[2]
    assert all(len(set(texts)) == 2 for texts in together.values())  # the two samples of a prompt differ
    reseeded = _by_index(backend, PROMPTS, GenParams(**{**params.to_dict(), "stop": (), "seed": 4}))
    assert reseeded != together


def test_fingerprint_and_describe(backend: HFBackend) -> None:
    fp = backend.fingerprint()
    assert fp["weights"] == resolve_model(None).fingerprint
    assert len(fp["chat_template"]) == 64
    assert fp["dtype"] == "float32" and fp["sampler"] == SAMPLER_VERSION
    info = backend.describe()
    assert info["device"] == "cpu" and info["batch_size"] == 3 and info["transformers"]


def test_auto_dtype_is_float32_on_cpu() -> None:
    cpu = pick_device("cpu")
    assert pick_dtype("auto", cpu) == torch.float32
    assert pick_dtype("bfloat16", cpu) == torch.bfloat16


def test_bad_dtype_and_device_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="dtype"):
        pick_dtype("float8", pick_device("cpu"))
    with pytest.raises(UsageError, match="device"):
        pick_device("tpu-ish")


def test_logprobs_cover_each_generated_token_and_greedy_picks_the_top_one(backend: HFBackend) -> None:
    plain = {c.index: c for c in backend.generate(PROMPTS[:2], GenParams(max_new_tokens=12))}
    with_lp = {c.index: c for c in backend.generate(PROMPTS[:2], GenParams(max_new_tokens=12, logprobs=3))}
    for index, c in with_lp.items():
        assert c.text == plain[index].text  # asking for logprobs does not change the greedy output
        tokens = c.meta["logprobs"]
        assert len(tokens) == c.completion_tokens
        for t in tokens:
            assert len(t["top"]) <= 3 and t["logprob"] <= 0
            assert t["logprob"] == pytest.approx(max(t["top"].values()), abs=1e-5)  # greedy = argmax
        assert "".join(t["token"] for t in tokens).strip().startswith(c.text.strip()[:5])
    assert "logprobs" not in plain[0].meta


def test_progress_is_reported_per_decode_step_within_a_batch(backend: HFBackend) -> None:
    # what a progress bar sees: tokens after every decode step, long before the batch's first answer arrives, and
    # the budget a row leaves unused as soon as it ends
    events: list[tuple[str, int]] = []
    released: list[int] = []
    steps_before = backend.stats.decode_steps
    params = GenParams(max_new_tokens=32)

    def on_tokens(count: int, unused: int) -> None:
        events.append(("tokens", count))
        released.append(unused)

    for c in backend.generate(PROMPTS, params, on_tokens):
        events.append(("answer", c.completion_tokens))
    answers = [k for kind, k in events if kind == "answer"]
    reports = [k for kind, k in events if kind == "tokens"]
    first_answer = next(i for i, (kind, _) in enumerate(events) if kind == "answer")
    assert len(answers) == 3 and first_answer == len(reports)  # one batch of 3: every step reported before it ends
    assert len(reports) == max(answers) == backend.stats.decode_steps - steps_before  # one report per step
    assert reports[0] == 3 and all(0 < k <= 3 for k in reports) and reports == sorted(reports, reverse=True)
    assert sum(reports) == sum(answers)  # a row counts until its EOS, then no more
    assert min(answers) < 32  # the terse prompts end early: the later steps report fewer rows
    assert sum(released) == sum(32 - k for k in answers)  # said at the step each row ended, not at the batch's end
    ended_at = next(i for i, r in enumerate(released) if r)
    assert released[ended_at] == 32 - min(answers) and ended_at + 1 == min(answers)


def test_progress_counts_greedy_copies_and_stop_strings(backend: HFBackend) -> None:
    reports: list[tuple[int, int]] = []
    done = list(backend.generate(PROMPTS[:2], GenParams(max_new_tokens=16, n=3), lambda *r: reports.append(r)))
    # batch size 3 holds one prompt's 3 samples: greedy decodes 1 row and counts it 3 times
    assert len(done) == 6 and reports[0][0] == 3
    assert sum(k for k, _ in reports) == sum(c.completion_tokens for c in done)
    assert sum(r for _, r in reports) == sum(16 - c.completion_tokens for c in done)
    reports.clear()
    cut = list(backend.generate(PROMPTS[1:2], GenParams(max_new_tokens=40, stop=("3",)), lambda *r: reports.append(r)))
    assert cut[0].finish_reason == "stop" and sum(k for k, _ in reports) == cut[0].completion_tokens < 40
    assert reports[-1][1] == 40 - cut[0].completion_tokens  # the stop string ended it: its budget is released


def test_stats_record_load_time_weights_and_decode_steps(backend: HFBackend) -> None:
    list(backend.generate(PROMPTS[:1], GenParams(max_new_tokens=4)))
    stats = backend.stats
    assert stats.load_s is not None and stats.load_s > 0
    n_params = sum(p.numel() for p in backend.model.parameters())
    assert stats.weights_bytes == 4 * n_params  # float32
    assert stats.decode_steps >= 4 and stats.decode_rows >= stats.decode_steps
    assert 0 < stats.prefill_s < stats.generate_s


def test_a_tokenizer_without_a_pad_token_still_batches(backend: HFBackend) -> None:
    # transformers 5.17 loads this GGUF's tokenizer with no pad token (5.19 sets one): `tokenizer.pad` then raised
    # "Asking to pad but the tokenizer does not have a padding token" on every batch (seen on a GPU machine)
    params = GenParams(max_new_tokens=16)
    expected = _by_index(backend, PROMPTS, params)
    saved = backend.tokenizer.pad_token
    backend.tokenizer.pad_token = None
    try:
        assert backend.tokenizer.pad_token_id is None
        assert _by_index(backend, PROMPTS, params) == expected
    finally:
        backend.tokenizer.pad_token = saved
