"""Seeded sampling whose draws belong to the row, not to the batch.

`generate(do_sample=True)` after one `torch.manual_seed` draws every row from one random stream, so a prompt's
sample depends on which prompts share its batch and where it sits: a run killed and resumed (the rest in other
batches), or run with another batch size, would sample differently. `RowSeededSampler` gives each row its own
generator, draws the row's token itself (inverse CDF, one uniform per row and step) and leaves only that token
finite, so greedy decoding with it samples. A row's seed comes from the run seed, its prompt tokens and its sample
index (base.sample_seed): the same in any batch.

perf/sampling_overhead.py (CPU, 32 GSM8K prompts x 128 tokens, one thread): faster than transformers' sampler at
top-p 0.95 (which sorts the whole vocabulary each step; this looks among the top 1024 first), on par at top-p 1.
Not measured on GPU, where a row whose nucleus is wider than 1024 tokens costs one host sync per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

from fusebench.backends.hf_identity import SAMPLER_VERSION  # noqa: F401  (its home: torch-free)

NUCLEUS_CANDIDATES = 1024  # top-p looks among this many top tokens first; rows whose nucleus is wider sort fully


def inverse_cdf(weights: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Per row, the index drawn with probability weight / row total, given a uniform in [0, 1) per row."""
    cumulative = weights.double().cumsum(dim=-1)
    targets = (uniforms.double() * cumulative[:, -1]).unsqueeze(-1)
    picked = torch.searchsorted(cumulative, targets, right=True).squeeze(-1)  # first index whose cumsum > target
    last_positive = weights.shape[-1] - 1 - (weights > 0).flip(-1).int().argmax(dim=-1)  # where rounding ran past
    return torch.minimum(picked, last_positive)


def nucleus_sample(probs: torch.Tensor, top_p: float, uniforms: torch.Tensor) -> torch.Tensor:
    """Draw from the smallest top set of tokens holding probability >= top_p (a token is kept when the mass ranked
    above it is < top_p; the top token always is), renormalised. The set is cut at a probability threshold, so
    tokens tied at the cut are all kept and the draw runs in vocabulary order: the result does not depend on how a
    sort orders ties, nor on whether the row needed the full sort."""
    k = min(NUCLEUS_CANDIDATES, probs.shape[-1])
    values = probs.topk(k, dim=-1).values
    cumulative = values.double().cumsum(dim=-1)
    wide = cumulative[:, -1] < top_p  # nucleus wider than the candidates: these rows sort fully
    if k < probs.shape[-1] and bool(wide.any()):
        full = probs[wide].sort(dim=-1, descending=True).values
        threshold = torch.empty(probs.shape[0], dtype=probs.dtype, device=probs.device)
        threshold[wide] = _cut(full, top_p)
        threshold[~wide] = _cut(values[~wide], top_p)
    else:
        threshold = _cut(values, top_p)
    return inverse_cdf(probs * (probs >= threshold.unsqueeze(-1)), uniforms)


def _cut(descending: torch.Tensor, top_p: float) -> torch.Tensor:
    """Per row of probabilities sorted high to low: the smallest kept one (mass ranked above it < top_p)."""
    above = descending.double().cumsum(dim=-1) - descending.double()
    kept = (above < top_p).sum(dim=-1)  # >= 1: nothing is ranked above the top token
    return descending.gather(-1, (kept - 1).unsqueeze(-1)).squeeze(-1)


class RowSeededSampler(LogitsProcessor):
    """Temperature, then top-p, then a draw per row from its own generator: every logit but the drawn token's
    becomes -inf. Give it to `generate(do_sample=False)` as the last logits processor; row r draws from seeds[r]."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 to sample, got {temperature}")
        self.temperature = temperature
        self.top_p = top_p
        # CPU generators on any device: the same seed draws the same uniforms on CPU and GPU, one copy per step
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"{scores.shape[0]} rows but {len(self.generators)} seeds")
        probs = (scores.float() / self.temperature).softmax(dim=-1)
        uniforms = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in self.generators])
        uniforms = uniforms.to(probs.device, non_blocking=True)
        drawn = nucleus_sample(probs, self.top_p, uniforms) if self.top_p < 1 else inverse_cdf(probs, uniforms)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, drawn.unsqueeze(-1), 0.0)
        return out  # type: ignore[return-value]
