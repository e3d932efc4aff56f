"""Cache keys: content hashes that decide whether a stored result can be reused."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(value: Any) -> str:
    """sha256 of a canonical JSON rendering (sorted keys), so equal content gives equal keys."""
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


SAMPLER_FIELD = "sampler"  # a fingerprint's sampling algorithm: part of a key only when the params sample


def generation_key(
    *,
    model_fingerprint: dict[str, Any],
    benchmark: str,
    benchmark_version: int,
    sample_id: str,
    sample_index: int,
    prompt: Any,
    gen_params: dict[str, Any],
) -> str:
    """Key of one generated answer. Batch size, device count and run id are deliberately not part of it.

    The model fingerprint carries the weights' identity, the chat-template hash and the backend where its
    outputs can differ (its sampler only counts for sampled params: greedy keys outlive a sampler change);
    gen_params carries the seed.
    """
    if not gen_params.get("temperature"):
        model_fingerprint = {k: v for k, v in model_fingerprint.items() if k != SAMPLER_FIELD}
    return stable_hash(
        {
            "model": model_fingerprint,
            "benchmark": [benchmark, benchmark_version],
            "sample": [sample_id, sample_index],
            "prompt": prompt,
            "params": gen_params,
        }
    )


def score_key(
    *,
    scorer: str,
    scorer_code: str,
    benchmark: str,
    benchmark_version: int,
    answer: str,
    generation_key: str,
    item: Any,
) -> str:
    """Key of one score: the scorer (its name and the hash of its source), what it was shown (the spec's answer
    mode, the stored generation, the item's row with its target), so a reused score is one that would be recomputed
    the same."""
    return stable_hash(
        {
            "scorer": [scorer, scorer_code],
            "benchmark": [benchmark, benchmark_version],
            "answer": answer,
            "generation": generation_key,
            "item": item,
        }
    )
