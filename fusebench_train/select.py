"""Selection rules of FuseChat-3.0 over scored responses: the SFT set, same-source DPO pairs, and their stats.

Pure functions of scored samples (no model), so every rule is unit-tested on hand-made data.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusebench_train.config import VERIFIABLE


@dataclass(frozen=True)
class Scored:
    """One sampled response with its score. `correct` is None for reward-model-scored (open-ended) prompts."""

    prompt_id: str
    domain: str
    source: str
    index: int  # sample number within (prompt, source)
    text: str
    score: float
    correct: bool | None
    n_tokens: int


@dataclass(frozen=True)
class Pair:
    """A DPO pair: chosen and rejected come from the same source model."""

    prompt_id: str
    domain: str
    source: str
    chosen: Scored
    rejected: Scored

    @property
    def gap(self) -> float:
        return self.chosen.score - self.rejected.score


def split_prompts(prompt_domains: Mapping[str, str], sft_fraction: Mapping[str, float], seed: int) -> dict[str, str]:
    """Assign each prompt to "sft" or "dpo": per domain, round(fraction * n) prompts go to SFT.

    The order is a seeded hash of the prompt id, so a prompt keeps its side when others are added or removed.
    """
    by_domain: dict[str, list[str]] = defaultdict(list)
    for pid, domain in prompt_domains.items():
        by_domain[domain].append(pid)
    side: dict[str, str] = {}
    for domain, pids in by_domain.items():
        order = sorted(pids, key=lambda p: hashlib.sha256(f"{seed}\0{p}".encode()).hexdigest())
        n_sft = round(sft_fraction.get(domain, 0.0) * len(order))
        for i, pid in enumerate(order):
            side[pid] = "sft" if i < n_sft else "dpo"
    return side


def _usable(r: Scored) -> bool:
    """A response that may be chosen: verifiable ones must be correct."""
    return r.correct is not False if r.domain not in VERIFIABLE else r.correct is True


def _best_key(r: Scored) -> tuple[float, int, str, int]:
    # highest score; ties: the shorter response, then a fixed order
    return (-r.score, r.n_tokens, r.source, r.index)


def _group(responses: Iterable[Scored]) -> dict[str, list[Scored]]:
    groups: dict[str, list[Scored]] = defaultdict(list)
    for r in responses:
        groups[r.prompt_id].append(r)
    return groups


def select_sft(responses: Iterable[Scored]) -> list[Scored]:
    """Per prompt, the top-scored response across all sources (for math/code: among the correct ones).

    Prompts without a usable response are dropped.
    """
    chosen = []
    for _, group in sorted(_group(responses).items()):
        usable = [r for r in group if _usable(r)]
        if usable:
            chosen.append(min(usable, key=_best_key))
    return chosen


def _source_pair(group: Sequence[Scored], gap_band: tuple[float, float]) -> Pair | None:
    """The pair of one (prompt, source): best usable vs worst; verifiable: correct vs incorrect."""
    first = group[0]
    if first.domain in VERIFIABLE:
        good = [r for r in group if r.correct is True]
        bad = [r for r in group if r.correct is False]
        if not good or not bad:
            return None
        # rejected: the lowest-scored incorrect one; ties: the longest, then a fixed order
        rejected = min(bad, key=lambda r: (r.score, -r.n_tokens, r.index))
        return Pair(first.prompt_id, first.domain, first.source, min(good, key=_best_key), rejected)
    if len(group) < 2:
        return None
    chosen = min(group, key=_best_key)
    rejected = min(group, key=lambda r: (r.score, -r.n_tokens, r.index))
    pair = Pair(first.prompt_id, first.domain, first.source, chosen, rejected)
    low, high = gap_band
    return pair if chosen is not rejected and low <= pair.gap <= high else None


def select_pairs(responses: Iterable[Scored], gap_band: tuple[float, float], pairs_per_prompt: int = 1) -> list[Pair]:
    """Same-source DPO pairs, at most `pairs_per_prompt` per prompt (sources with the best chosen first).

    Open-ended prompts keep a pair only when its reward gap lies in `gap_band` (inclusive); math/code pairs
    are a correct response against an incorrect one from the same source.
    """
    pairs = []
    for _, group in sorted(_group(responses).items()):
        by_source: dict[str, list[Scored]] = defaultdict(list)
        for r in group:
            by_source[r.source].append(r)
        candidates = [p for s in sorted(by_source) if (p := _source_pair(by_source[s], gap_band)) is not None]
        candidates.sort(key=lambda p: (_best_key(p.chosen), -p.gap))
        pairs.extend(candidates[:pairs_per_prompt])
    return pairs


@dataclass
class BuildResult:
    sft: list[Scored]
    pairs: list[Pair]
    side: dict[str, str]


def build(
    responses: Sequence[Scored],
    sft_fraction: Mapping[str, float],
    gap_band: tuple[float, float],
    pairs_per_prompt: int = 1,
    seed: int = 0,
) -> BuildResult:
    """Drop prompts where every response fails, split the rest between SFT and DPO, then select on each side."""
    usable = {r.prompt_id for r in responses if _usable(r)}
    side = split_prompts({r.prompt_id: r.domain for r in responses if r.prompt_id in usable}, sft_fraction, seed)
    sft = select_sft(r for r in responses if side.get(r.prompt_id) == "sft")
    pairs = select_pairs((r for r in responses if side.get(r.prompt_id) == "dpo"), gap_band, pairs_per_prompt)
    return BuildResult(sft, pairs, side)


def build_stats(
    result: BuildResult, responses: Sequence[Scored], gap_band: tuple[float, float] = (0.01, 0.1), bins: int = 9
) -> dict[str, Any]:
    """Counts per domain and source, dropped prompts, the reward-gap histogram of reward-model pairs (over the
    kept band), the number of verifiable (correct vs incorrect) pairs, and the chosen/rejected length ratio."""
    n_prompts = Counter(result.side.values())
    gaps = np.array([p.gap for p in result.pairs if p.domain not in VERIFIABLE], dtype=float)
    histogram = []
    if gaps.size:
        low, high = gap_band
        counts, edges = np.histogram(gaps, bins=bins, range=(low, high) if high > low else None)
        histogram = [
            {"low": float(lo), "high": float(hi), "count": int(c)}
            for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
        ]
    ratios = [p.chosen.n_tokens / max(1, p.rejected.n_tokens) for p in result.pairs]
    correct_by_source: dict[str, list[bool]] = defaultdict(list)
    for r in responses:
        if r.correct is not None:
            correct_by_source[r.source].append(r.correct)
    return {
        "responses": len(responses),
        "prompts_without_usable_response": len({r.prompt_id for r in responses}) - len(result.side),
        "prompts": {"sft": n_prompts.get("sft", 0), "dpo": n_prompts.get("dpo", 0)},
        "sft_examples": len(result.sft),
        "sft_by_domain_source": _nested_counts((r.domain, r.source) for r in result.sft),
        "dpo_pairs": len(result.pairs),
        "dpo_prompts_without_pair": n_prompts.get("dpo", 0) - len({p.prompt_id for p in result.pairs}),
        "dpo_by_domain_source": _nested_counts((p.domain, p.source) for p in result.pairs),
        "reward_gap_histogram": histogram,
        "verifiable_pairs": sum(1 for p in result.pairs if p.domain in VERIFIABLE),
        "chosen_rejected_length_ratio": float(np.mean(ratios)) if ratios else None,
        "accuracy_by_source": {s: sum(v) / len(v) for s, v in sorted(correct_by_source.items())},
    }


def _nested_counts(keys: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for (a, b), n in sorted(Counter(keys).items()):
        out[a][b] = n
    return dict(out)


def format_stats(stats: Mapping[str, Any]) -> str:
    """The build stats as a few human-readable lines."""
    from tabulate import tabulate

    lines = [
        f"prompts: {stats['prompts']['sft']} SFT, {stats['prompts']['dpo']} DPO, "
        f"{stats['prompts_without_usable_response']} dropped (every response failed); scored: {stats['responses']}",
        f"SFT examples: {stats['sft_examples']}",
        f"DPO pairs: {stats['dpo_pairs']} ({stats['dpo_prompts_without_pair']} DPO prompts without a pair)",
    ]
    rows = [
        [domain, source, stats["sft_by_domain_source"].get(domain, {}).get(source, 0), n]
        for domain, per in stats["dpo_by_domain_source"].items()
        for source, n in per.items()
    ]
    rows += [
        [domain, source, n, 0]
        for domain, per in stats["sft_by_domain_source"].items()
        for source, n in per.items()
        if source not in stats["dpo_by_domain_source"].get(domain, {})
    ]
    if rows:
        lines.append(tabulate(sorted(rows), headers=["domain", "source", "sft", "dpo pairs"]))
    if stats["accuracy_by_source"]:
        acc = ", ".join(f"{s} {100 * a:.1f}%" for s, a in stats["accuracy_by_source"].items())
        lines.append(f"sampled accuracy (verifiable prompts): {acc}")
    lines.append(f"verifiable pairs (correct vs incorrect, gap 1): {stats['verifiable_pairs']}")
    if stats["reward_gap_histogram"]:
        lines.append("reward gap histogram (reward-model pairs):")
        lines += [f"  [{b['low']:.3f}, {b['high']:.3f}]  {b['count']}" for b in stats["reward_gap_histogram"]]
    ratio = stats["chosen_rejected_length_ratio"]
    lines.append(
        f"chosen/rejected length ratio: {ratio:.2f}" if ratio is not None else "chosen/rejected length ratio: -"
    )
    return "\n".join(lines)
