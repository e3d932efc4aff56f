"""The per-row seeded sampler: right distribution, right nucleus, draws that follow the row's seed only."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fusebench.backends.base import sample_seed
from fusebench.backends.hf_sampling import NUCLEUS_CANDIDATES, RowSeededSampler, inverse_cdf

PROBS = torch.tensor([0.5, 0.3, 0.15, 0.05])


def _draw(seeds: list[int], logits: torch.Tensor, temperature: float = 1.0, top_p: float = 1.0) -> torch.Tensor:
    out = RowSeededSampler(seeds, temperature, top_p)(torch.zeros(len(seeds), 1, dtype=torch.long), logits)
    assert bool((out.isfinite().sum(dim=-1) == 1).all())  # exactly one token left to the argmax
    return out.argmax(dim=-1)


def _frequencies(drawn: torch.Tensor, size: int) -> torch.Tensor:
    return torch.bincount(drawn, minlength=size).double() / len(drawn)


def test_draws_follow_the_softmax() -> None:
    rows = 20_000
    drawn = _draw(list(range(rows)), PROBS.log().repeat(rows, 1))
    assert torch.allclose(_frequencies(drawn, 4), PROBS.double(), atol=0.015)


def test_temperature_sharpens() -> None:
    rows = 20_000
    drawn = _draw(list(range(rows)), PROBS.log().repeat(rows, 1), temperature=0.5)
    sharpened = PROBS.double() ** 2 / (PROBS.double() ** 2).sum()
    assert torch.allclose(_frequencies(drawn, 4), sharpened, atol=0.015)


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    rows = 20_000
    # mass ranked above token 1 is 0.5 < 0.7 (kept); above token 2 it is 0.8 (dropped)
    drawn = _draw(list(range(rows)), PROBS.log().repeat(rows, 1), top_p=0.7)
    expected = torch.tensor([0.625, 0.375, 0.0, 0.0], dtype=torch.float64)
    assert torch.allclose(_frequencies(drawn, 4), expected, atol=0.015)


def test_a_nucleus_wider_than_the_candidates_is_found() -> None:
    size = NUCLEUS_CANDIDATES * 4  # uniform: the top-p set holds 90% of the vocabulary
    drawn = _draw(list(range(4000)), torch.zeros(4000, size), top_p=0.9)
    assert int(drawn.max()) >= NUCLEUS_CANDIDATES  # tokens beyond the first candidates are drawn too


def test_tokens_tied_at_the_cut_are_all_kept() -> None:
    rows = 20_000
    probs = torch.tensor([0.4, 0.3, 0.3])  # top-p 0.5: token 1 makes the set; token 2 ties with it
    drawn = _draw(list(range(rows)), probs.log().repeat(rows, 1), top_p=0.5)
    assert torch.allclose(_frequencies(drawn, 3), probs.double(), atol=0.015)


def test_ties_and_a_wide_neighbour_do_not_change_a_draw() -> None:
    # tied top logits (as bf16 logits often are) and, in the same batch, a flat row whose nucleus is wider than the
    # candidates: the row must draw what it draws alone
    size = NUCLEUS_CANDIDATES * 4
    tied = torch.full((size,), -20.0)
    places = torch.randperm(size, generator=torch.Generator().manual_seed(0))  # sorts order scattered ties apart
    tied[places[:4]] = 3.0
    tied[places[4:8]] = 2.0
    flat = torch.zeros(size)
    for seed in range(100):
        alone = _draw([seed], tied.unsqueeze(0), top_p=0.95)
        batched = _draw([seed, seed + 1], torch.stack([tied, flat]), top_p=0.95)
        assert int(alone[0]) == int(batched[0])


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(0, 2**62), min_size=2, max_size=8, unique=True),
    st.floats(0.3, 1.5),
    st.sampled_from([1.0, 0.95, 0.5]),
    st.randoms(use_true_random=False),
)
def test_a_row_draws_the_same_whatever_its_neighbours(
    seeds: list[int], temperature: float, top_p: float, rnd: object
) -> None:
    generator = torch.Generator().manual_seed(len(seeds))
    logits = torch.randn(len(seeds), 50, generator=generator) * 3
    order = list(range(len(seeds)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    together = _draw(seeds, logits, temperature, top_p)
    shuffled = _draw([seeds[i] for i in order], logits[order], temperature, top_p)
    assert shuffled.tolist() == [together[i] for i in order]
    assert _draw(seeds[:1], logits[:1], temperature, top_p).tolist() == together[:1].tolist()


def test_inverse_cdf_never_draws_a_zero_weight() -> None:
    weights = torch.tensor([[0.0, 1.0, 0.0, 0.0, 2.0, 0.0]])
    drawn = [int(inverse_cdf(weights, torch.tensor([u], dtype=torch.float64))[0]) for u in (0.0, 0.3333, 0.34, 1.0)]
    assert drawn == [1, 1, 4, 4]  # 1.0 (rounding) stays on the last token with weight


def test_sample_seeds_differ_by_seed_prompt_and_sample() -> None:
    seeds = {sample_seed(s, p, j) for s in (0, 1) for p in ([1, 2], [2, 1], "[1, 2]") for j in (0, 1)}
    assert len(seeds) == 12 and all(0 <= x < 2**63 for x in seeds)
    assert all(0 <= sample_seed(7, "text", j, bits=31) < 2**31 for j in range(50))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="temperature"):
        RowSeededSampler([1], 0.0, 1.0)
    with pytest.raises(ValueError, match="2 rows but 1 seeds"):
        _draw([1], torch.zeros(2, 3))
