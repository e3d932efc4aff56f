"""Score a benchmark's stored outputs with its spec's scorer and aggregate to a metric with a 95% CI."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fusebench.data import Item
from fusebench.errors import UsageError
from fusebench.progress import CountProgress
from fusebench.scale import PROPORTION, RATING_10, Scale
from fusebench.scorers.base import Score, ScoreInput, get_scorer
from fusebench.scorers.sanitize import answer_text
from fusebench.spec import BenchmarkSpec
from fusebench.stats import Interval, grouped_mean_ci, mean_ci

if TYPE_CHECKING:
    from fusebench.judging.stage import BenchmarkJudgments, JudgeTask

# Scorers that spend their time in subprocesses (the code sandbox) run in parallel threads.
PARALLEL_SCORERS = frozenset({"humaneval", "mbpp", "mbpp_base", "mbpp_plus", "livecodebench"})
FAILURE_REASONS = frozenset({"extraction_failed", "no answer found"})


def scale_of(spec: BenchmarkSpec) -> Scale:
    """The scale of a benchmark's scores, as its judge mode or scorer defines it."""
    if spec.judge is not None and spec.judge.mode in ("single", "alignbench"):
        return RATING_10
    return PROPORTION


@dataclass
class BenchmarkScore:
    scores: list[Score]  # one per (item, sample)
    n_items: int
    interval: Interval  # in points (0-100)
    details: dict[str, Any]


def score_benchmark(
    spec: BenchmarkSpec, items: Sequence[Item], outputs: Sequence[str], progress: bool = False
) -> BenchmarkScore:
    """Score each output against its item, then average samples per item and items per benchmark. Code runs in
    the sandbox show a bar when `progress`."""
    try:
        scorer = get_scorer(spec.scorer)
    except KeyError:
        raise UsageError(f"benchmark {spec.id}: unknown scorer {spec.scorer!r}") from None
    inputs = [
        ScoreInput(output=answer_text(spec, i.row, o), target=i.target, item=i.row)
        for i, o in zip(items, outputs, strict=True)
    ]
    if spec.scorer in PARALLEL_SCORERS:
        with CountProgress(len(inputs), f"run:{spec.id}", "program", progress) as bar:

            def run(inp: ScoreInput) -> Score:
                score = scorer(inp)
                bar.advance()
                return score

            with ThreadPoolExecutor() as pool:
                scores = list(pool.map(run, inputs))
    else:
        scores = [scorer(inp) for inp in inputs]
    per_item: dict[str, list[float]] = defaultdict(list)
    rows = {}
    for item, score in zip(items, scores, strict=True):
        per_item[item.id].append(score.value)
        rows[item.id] = item.row
    item_means = {item_id: sum(v) / len(v) for item_id, v in per_item.items()}
    if spec.scorer == "livebench":  # LiveBench's headline: the mean over categories of the mean over their tasks
        groups = [(str(rows[i]["category"]), str(rows[i]["task"])) for i in item_means]
        ci = grouped_mean_ci(list(item_means.values()), groups)
    else:
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


@dataclass
class JudgedScore:
    """A judged benchmark's score (None while judgments are missing), per-item scores and details."""

    score: float | None  # in the benchmark's units: win rate points, or a 1-10 rating
    ci: tuple[float, float] | None  # 95% CI where the reference gives one (Arena-Hard bootstrap, MT-Bench mean)
    item_scores: dict[str, float]  # per item: win share 0-1 (pairwise, alpaca_eval) or mean rating 1-10
    details: dict[str, Any]
    verdicts: dict[str, str] = field(default_factory=dict)  # per item: its verdicts, e.g. "1: A>B; 2: failure (...)"


def _win_share(label: str, model_is_b: bool) -> float:
    """A pairwise verdict from the model's side: 1 win, 0.5 tie, 0 loss (strength ignored)."""
    if label == "A=B":
        return 0.5
    return 1.0 if label.startswith("B") == model_is_b else 0.0


def score_judged(judged: BenchmarkJudgments) -> JudgedScore:
    """Aggregate a benchmark's judgments with the reference formulas (fusebench.judging.metrics); no score while
    judgments are missing (budget, transport errors), so a partial run is never reported as a result."""
    spec = judged.spec
    assert spec.judge is not None
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
    by_item: dict[str, dict[int, tuple[Any, JudgeTask]]] = defaultdict(dict)
    for j in judged.judgments:
        assert j.verdict is not None
        by_item[j.task.sample_id][j.task.slot] = (j.verdict.value, j.task)
    aggregate = {"pairwise": _arena_hard, "single": _mt_bench, "alpaca_eval": _alpaca_eval, "alignbench": _alignbench}
    score, ci, items, details["metrics"] = aggregate[spec.judge.mode](by_item)
    if spec.judge.mode in ("single", "alignbench"):  # ratings per turn (MT-Bench) or per category (AlignBench)
        details["breakdown"] = _rating_breakdown(judged, by_turn=spec.judge.mode == "single")
    verdicts: dict[str, list[str]] = defaultdict(list)
    for j in judged.judgments:
        assert j.verdict is not None
        shown = j.verdict.value if j.verdict.ok else f"failure ({j.verdict.method})"
        verdicts[j.task.sample_id].append(f"{j.task.slot}: {shown}")
    return JudgedScore(score, ci, items, details, {i: "; ".join(v) for i, v in verdicts.items()})


def _rating_breakdown(judged: BenchmarkJudgments, by_turn: bool) -> dict[str, dict[str, float]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for j in judged.judgments:
        if j.verdict is not None and j.verdict.ok:
            group = f"turn {j.task.slot}" if by_turn else str(j.task.context["category"])
            groups[group].append(float(j.verdict.value))  # type: ignore[arg-type]
    return {g: {"n": len(v), "score": sum(v) / len(v)} for g, v in sorted(groups.items())}


_Judged = dict[str, dict[int, tuple[Any, "JudgeTask"]]]  # item -> slot -> (verdict value, task)
_Aggregate = tuple[float | None, tuple[float, float] | None, dict[str, float], dict[str, Any]]


def _arena_hard(by_item: _Judged) -> _Aggregate:
    from fusebench.judging.metrics import PairwiseGame, arena_hard_score

    games = [PairwiseGame(i, slots[1][0], slots[2][0]) for i, slots in by_item.items()]
    result = arena_hard_score(games)
    items = {}
    for g in games:
        views = ((g.verdict_model_second, True), (g.verdict_model_first, False))
        shares = [_win_share(label, model_is_b) for label, model_is_b in views if label is not None]
        if shares:
            items[g.question_id] = sum(shares) / len(shares)
    ci = None if result["ci_low"] is None else (result["ci_low"], result["ci_high"])
    return result["score"], ci, items, result


def _mt_bench(by_item: _Judged) -> _Aggregate:
    from fusebench.judging.metrics import mt_bench_score

    ratings = [(i, turn, v[0]) for i, slots in by_item.items() for turn, v in sorted(slots.items())]
    result = mt_bench_score(ratings)
    per_item: dict[str, list[float]] = defaultdict(list)
    for i, _, rating in ratings:
        if rating is not None:
            per_item[i].append(rating)
    rated = [r for values in per_item.values() for r in values]
    items = {i: sum(v) / len(v) for i, v in per_item.items()}
    interval = mean_ci(rated) if rated else None
    ci = (interval.low, interval.high) if interval else None
    return result["score"], ci, items, result


def _alpaca_eval(by_item: _Judged) -> _Aggregate:
    from fusebench.judging.metrics import AlpacaAnnotation, alpaca_eval_score

    annotations = []
    for value, task in (slots[1] for slots in by_item.values()):
        output = task.judged[task.context["model_token"]]
        annotations.append(AlpacaAnnotation(task.context["instruction"], output, task.context["reference"], value))
    items = {i: slots[1][0] - 1.0 for i, slots in by_item.items() if slots[1][0] is not None}
    if len(items) < 2:  # alpaca_eval's length-controlled GLM cannot be fit (its length feature is standardised)
        note = "fewer than 2 judged outputs: alpaca_eval's length-controlled win rate is undefined"
        return None, None, items, {"lc_win_rate": None, "n": len(items), "note": note}
    result = alpaca_eval_score(annotations)
    return result["lc_win_rate"], None, items, result


def _alignbench(by_item: _Judged) -> _Aggregate:
    from fusebench.judging.metrics import alignbench_score

    ratings = [(i, slots[1][1].context["category"], slots[1][0]) for i, slots in by_item.items()]
    result = alignbench_score(ratings)
    items = {i: r for i, _, r in ratings if r is not None}
    return result["score"], None, items, result
