"""Seeded sampling whose draws belong to the row, not to the batch.

`generate(do_sample=True)` after one `torch.manual_seed` draws every row from one random stream, so a prompt's
sample depends on which prompts share its batch and where it sits: a run killed and resumed (the rest in other
batches), or run with another batch size, would sample differently. `RowSeededSampler` gives each row its own
generator, draws the row's token itself (inverse CDF, one uniform per row and step) and leaves only that token
finite, so greedy decoding with it samples. A row's seed comes from the run seed, its prompt tokens and its sample
index: the same in any batch.

perf/sampling_overhead.py (32 GSM8K prompts x 128 tokens, one thread): 1.41x faster than transformers' sampler at
top-p 0.95 (which sorts the whole vocabulary each step; this looks among the top 1024 first), 1.07x at top-p 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

NUCLEUS_CANDIDATES = 1024  # top-p looks among this many top tokens first; rows whose nucleus is wider sort fully


def row_seed(seed: int, prompt: Sequence[int], sample: int) -> int:
    """A 63-bit seed for sample `sample` of `prompt` in a run seeded with `seed`."""
    text = f"{seed}:{sample}:{','.join(map(str, prompt))}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def inverse_cdf(weights: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Per row, the index drawn with probability weight / row total, given a uniform in [0, 1) per row."""
    cumulative = weights.double().cumsum(dim=-1)
    targets = (uniforms.double() * cumulative[:, -1]).unsqueeze(-1)
    picked = torch.searchsorted(cumulative, targets, right=True).squeeze(-1)  # first index whose cumsum > target
    last_positive = weights.shape[-1] - 1 - (weights > 0).flip(-1).int().argmax(dim=-1)  # where rounding ran past
    return torch.minimum(picked, last_positive)


def nucleus_sample(probs: torch.Tensor, top_p: float, uniforms: torch.Tensor) -> torch.Tensor:
    """Draw from the smallest top set of tokens holding probability >= top_p (a token is kept when the mass ranked
    above it is < top_p; the top token always is), renormalised."""
    k = min(NUCLEUS_CANDIDATES, probs.shape[-1])
    values, indices = probs.topk(k, dim=-1)
    cumulative = values.double().cumsum(dim=-1)
    if k < probs.shape[-1] and bool((cumulative[:, -1] < top_p).any()):  # a nucleus wider than the candidates
        values, indices = probs.sort(dim=-1, descending=True)
        cumulative = values.double().cumsum(dim=-1)
    kept = values.double() * ((cumulative - values.double()) < top_p)
    return indices.gather(-1, inverse_cdf(kept, uniforms).unsqueeze(-1)).squeeze(-1)


class RowSeededSampler(LogitsProcessor):
    """Temperature, then top-p, then a draw per row from its own generator: every logit but the drawn token's
    becomes -inf. Give it to `generate(do_sample=False)` as the last logits processor; row r draws from seeds[r]."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, device: torch.device) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 to sample, got {temperature}")
        self.temperature = temperature
        self.top_p = top_p
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"{scores.shape[0]} rows but {len(self.generators)} seeds")
        probs = (scores.float() / self.temperature).softmax(dim=-1)
        uniforms = torch.cat(
            [torch.rand(1, generator=g, dtype=torch.float64, device=g.device) for g in self.generators]
        ).to(probs.device)
        drawn = nucleus_sample(probs, self.top_p, uniforms) if self.top_p < 1 else inverse_cdf(probs, uniforms)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, drawn.unsqueeze(-1), 0.0)
        return out  # type: ignore[return-value]
