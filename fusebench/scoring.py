"""Score a benchmark's stored outputs with its scorer, or aggregate its judgments with its judge mode: what a
benchmark's scoring does (parallel or serial, the corpus aggregation, the scale, what counts as an extraction failure)
is its scorer's or judge mode's, looked up by the name its spec gives."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fusebench.data import Item
from fusebench.errors import UsageError
from fusebench.progress import CountProgress
from fusebench.scale import Scale
from fusebench.scorers.base import Score, ScoreInput, Scorer, grouped_breakdown, lookup
from fusebench.scorers.sanitize import answer_text
from fusebench.spec import BenchmarkSpec
from fusebench.stats import Interval

if TYPE_CHECKING:
    from fusebench.judging.modes.base import Judged
    from fusebench.judging.stage import BenchmarkJudgments


def scorer_of(spec: BenchmarkSpec) -> Scorer:
    """The scorer a (non-judged) spec names; UsageError when none is registered under that name."""
    try:
        return lookup(spec.scorer)
    except KeyError:
        raise UsageError(f"benchmark {spec.id}: unknown scorer {spec.scorer!r}") from None


def scale_of(spec: BenchmarkSpec) -> Scale:
    """The scale of a benchmark's scores, as its judge mode or scorer defines it."""
    if spec.judge is not None:
        from fusebench.judging.modes import get_mode

        return get_mode(spec.judge.mode).scale
    return scorer_of(spec).scale


@dataclass
class BenchmarkScore:
    scores: list[Score]  # one per (item, sample)
    n_items: int
    interval: Interval  # in display points (0-100 for a proportion)
    details: dict[str, Any]


def score_benchmark(
    spec: BenchmarkSpec,
    items: Sequence[Item],
    outputs: Sequence[str],
    progress: bool = False,
    known: Mapping[int, Score] | None = None,
) -> BenchmarkScore:
    """Score each output against its item (but those whose score `known` gives by position), then average samples
    per item and aggregate items as the scorer does. A parallel scorer (code run in the sandbox) shows a bar when
    `progress`."""
    scorer = scorer_of(spec)
    known = known or {}
    todo = [i for i in range(len(outputs)) if i not in known]
    inputs = [
        ScoreInput(output=answer_text(spec, items[i].row, outputs[i]), target=items[i].target, item=items[i].row)
        for i in todo
    ]
    if scorer.parallel and inputs:
        with CountProgress(len(inputs), f"run:{spec.id}", "program", progress) as bar:

            def run(inp: ScoreInput) -> Score:
                score = scorer.score(inp)
                bar.advance()
                return score

            with ThreadPoolExecutor() as pool:
                computed = list(pool.map(run, inputs))
    else:
        computed = [scorer.score(inp) for inp in inputs]
    by_position = {**known, **dict(zip(todo, computed, strict=True))}
    scores = [by_position[i] for i in range(len(outputs))]
    per_item: dict[str, list[float]] = defaultdict(list)
    rows = {}
    for item, score in zip(items, scores, strict=True):
        per_item[item.id].append(score.value)
        rows[item.id] = item.row
    item_means = {item_id: sum(v) / len(v) for item_id, v in per_item.items()}
    ci = scorer.aggregate(item_means, rows)
    details: dict[str, Any] = {
        "n_samples": len(scores),
        "extraction_failures": sum(1 for s in scores if s.reason in scorer.failure_reasons),
    }
    if spec.breakdown_field:
        groups = {i: str(r.get(spec.breakdown_field)) for i, r in rows.items()}
        details["breakdown"] = grouped_breakdown(item_means, groups, scorer.scale)
    points = scorer.scale.points_per_unit
    return BenchmarkScore(
        scores=scores,
        n_items=len(per_item),
        interval=Interval(points * ci.estimate, points * ci.low, points * ci.high),
        details=details,
    )


@dataclass
class JudgedScore:
    """A judged benchmark's score (None while judgments are missing), per-item scores and details."""

    score: float | None  # in the benchmark's display points: win rate points, or a 1-10 rating
    ci: tuple[float, float] | None  # 95% CI where the reference gives one (Arena-Hard bootstrap, MT-Bench mean)
    item_scores: dict[str, float]  # per item, as the judge mode scores it: win share 0-1, or mean rating 1-10
    details: dict[str, Any]
    verdicts: dict[str, str] = field(default_factory=dict)  # per item: its verdicts, e.g. "1: A>B; 2: failure (...)"


def score_judged(judged: BenchmarkJudgments) -> JudgedScore:
    """Aggregate a benchmark's judgments with its judge mode's reference formula; no score while judgments are
    missing (budget, transport errors), so a partial run is never reported as a result."""
    from fusebench.judging.modes import get_mode

    spec = judged.spec
    assert spec.judge is not None
    mode = get_mode(spec.judge.mode)
    details: dict[str, Any] = {
        "judge": judged.judge,
        "n_judgments": len(judged.judgments),
        "judge_failures": judged.failures,
        "missing_judgments": judged.missing,
        "verdict_methods": judged.methods(),
        "judge_usage": judged.usage.to_dict(),
    }
    if judged.missing:
        return JudgedScore(None, None, {}, details)
    by_item: Judged = defaultdict(dict)
    for j in judged.judgments:
        assert j.verdict is not None
        by_item[j.task.sample_id][j.task.slot] = (j.verdict.value, j.task)
    aggregated = mode.aggregate(by_item)
    details["metrics"] = aggregated.metrics
    breakdown = mode.breakdown(
        [(j.task, j.verdict) for j in judged.judgments if j.verdict is not None and j.verdict.ok]
    )
    if breakdown is not None:
        details["breakdown"] = breakdown
    verdicts: dict[str, list[str]] = defaultdict(list)
    for j in judged.judgments:
        assert j.verdict is not None
        shown = j.verdict.value if j.verdict.ok else f"failure ({j.verdict.method})"
        verdicts[j.task.sample_id].append(f"{j.task.slot}: {shown}")
    return JudgedScore(
        aggregated.score, aggregated.ci, aggregated.items, details, {i: "; ".join(v) for i, v in verdicts.items()}
    )
