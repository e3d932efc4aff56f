"""Score a benchmark's stored outputs with its spec's scorer and aggregate to a metric with a 95% CI."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fusebench.data import Item
from fusebench.errors import UsageError
from fusebench.scorers.base import Score, ScoreInput, get_scorer
from fusebench.spec import BenchmarkSpec
from fusebench.stats import Interval, mean_ci

# Scorers that spend their time in subprocesses (the code sandbox) run in parallel threads.
PARALLEL_SCORERS = frozenset({"humaneval", "mbpp", "mbpp_base", "mbpp_plus", "livecodebench"})
FAILURE_REASONS = frozenset({"extraction_failed", "no answer found"})


@dataclass
class BenchmarkScore:
    scores: list[Score]  # one per (item, sample)
    n_items: int
    interval: Interval  # in points (0-100)
    details: dict[str, Any]


def score_benchmark(spec: BenchmarkSpec, items: Sequence[Item], outputs: Sequence[str]) -> BenchmarkScore:
    """Score each output against its item, then average samples per item and items per benchmark."""
    try:
        scorer = get_scorer(spec.scorer)
    except KeyError:
        raise UsageError(f"benchmark {spec.id}: unknown scorer {spec.scorer!r}") from None
    inputs = [ScoreInput(output=o, target=i.target, item=i.row) for i, o in zip(items, outputs, strict=True)]
    if spec.scorer in PARALLEL_SCORERS:
        with ThreadPoolExecutor() as pool:
            scores = list(pool.map(scorer, inputs))
    else:
        scores = [scorer(inp) for inp in inputs]
    per_item: dict[str, list[float]] = defaultdict(list)
    rows = {}
    for item, score in zip(items, scores, strict=True):
        per_item[item.id].append(score.value)
        rows[item.id] = item.row
    item_means = {item_id: sum(v) / len(v) for item_id, v in per_item.items()}
    ci = mean_ci(list(item_means.values()))
    details: dict[str, Any] = {
        "n_samples": len(scores),
        "extraction_failures": sum(1 for s in scores if s.reason in FAILURE_REASONS),
    }
    if spec.breakdown_field:
        details["breakdown"] = breakdown(item_means, {i: str(r.get(spec.breakdown_field)) for i, r in rows.items()})
    return BenchmarkScore(
        scores=scores,
        n_items=len(per_item),
        interval=Interval(100 * ci.estimate, 100 * ci.low, 100 * ci.high),
        details=details,
    )


def breakdown(item_means: dict[str, float], groups: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per-group item count and score (points), e.g. MMLU-Pro's 14 categories."""
    members: dict[str, list[float]] = defaultdict(list)
    for item_id, value in item_means.items():
        members[groups[item_id]].append(value)
    return {g: {"n": len(v), "score": 100 * sum(v) / len(v)} for g, v in sorted(members.items())}
