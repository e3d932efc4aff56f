"""One eval: plan the requests, reuse cached generations, generate the rest, score, aggregate, store."""

from __future__ import annotations

import logging
import secrets
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from fusebench.backends.base import Backend, Completion, Conversation, GenParams
from fusebench.environment import environment
from fusebench.errors import UsageError
from fusebench.exits import Interrupted, signals_raise
from fusebench.generation_writer import GenerationWriter
from fusebench.keys import score_key, stable_hash
from fusebench.plan import PlannedBenchmark, Request, build_requests, gen_params, load_benchmark_items, plan_from_run
from fusebench.preflight import check_planned, check_specs
from fusebench.progress import GenerationProgress
from fusebench.scorers.base import Score
from fusebench.scorers.fingerprint import scorer_code
from fusebench.scoring import JudgedScore, scale_of, score_benchmark, score_judged, scorer_of
from fusebench.spec import BenchmarkSpec, get_benchmark, get_suite
from fusebench.speed import SpeedMeter, engine_stats
from fusebench.store import BenchmarkSettings, RunSettings, RunSummary, Store, now, to_jsonable

if TYPE_CHECKING:
    from fusebench.judging.stage import BenchmarkJudgments, JudgeOptions, JudgeStage

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """What `fusebench eval` was asked to do."""

    model: str | None = None
    backend: str = "hf"
    suite: str | None = "demo"
    benchmarks: list[str] | None = None
    limit: int | None = None
    seed: int = 0
    generation: dict[str, Any] = field(default_factory=dict)  # overrides of spec/suite params
    no_cache: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    progress: bool = True
    judge: JudgeOptions | None = None  # judged benchmarks: judge model, endpoint, budget (None: the specs' judges)


def plan_benchmarks(config: EvalConfig) -> list[PlannedBenchmark]:
    """Resolve suite/benchmark names, load data and generation params. Fails before any model is loaded."""
    if config.limit is not None and config.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {config.limit}")
    suite_generation: dict[str, Any] = {}
    entries: list[tuple[str, int | None]]
    if config.benchmarks:
        entries = [(name, None) for name in config.benchmarks]
    else:
        suite = get_suite(config.suite or "demo")
        entries = [(e.benchmark, e.limit) for e in suite.entries]
        suite_generation = suite.generation
    check_specs([get_benchmark(name) for name, _ in entries])  # every spec resolves before any data loads
    planned = []
    for name, suite_limit in entries:
        spec = get_benchmark(name)
        limits = [v for v in (suite_limit, config.limit) if v is not None]
        data = load_benchmark_items(spec, min(limits) if limits else None)
        overrides = {**suite_generation, **config.generation, "seed": config.seed}
        params = gen_params(name, {**spec.generation, **overrides})
        by = spec.generation_by.values if spec.generation_by else {}
        params_by = {v: gen_params(name, {**spec.generation, **extra, **overrides}) for v, extra in by.items()}
        planned.append(PlannedBenchmark(spec, data, params, params_by))
    check_planned(planned)  # scorers, judge files: before the first generation
    return planned


def next_turn_history(
    requests: Sequence[Request], stored: dict[str, dict[str, Any]]
) -> dict[tuple[str, str, int], Conversation]:
    """Each answered request's conversation extended with its stored answer: the history the next turn builds on
    (a failed or missing answer continues nothing)."""
    return {
        (r.benchmark, r.item.id, r.sample_index): [
            *r.conversation,
            {"role": "assistant", "content": stored[r.key]["output"]},
        ]
        for r in requests
        if r.key in stored and answered(stored[r.key])
    }


def answered(generation: dict[str, Any]) -> bool:
    """A stored generation is an answer unless its request failed (finish_reason "error"): a failed one is never
    served from the cache, never scored nor judged, and leaves its run incomplete until a rerun retries it."""
    return generation["finish_reason"] != "error"


def unanswered_items(requests: Sequence[Request], stored: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """benchmark -> ids of items with a failed (or absent) generation in any sample or turn."""
    failed: dict[str, set[str]] = defaultdict(set)
    for r in requests:
        if r.key not in stored or not answered(stored[r.key]):
            failed[r.benchmark].add(r.item.id)
    return dict(failed)


def generate_missing(
    backend: Backend,
    store: Store,
    missing: list[Request],
    progress: bool,
    meter: SpeedMeter | None = None,
) -> int:
    """Generate every missing request, grouped by GenParams; returns the number of model calls made. Progress
    (tokens per decode step, samples per benchmark) shows when `progress`; speed figures go to `meter`."""
    groups: dict[GenParams, list[Request]] = defaultdict(list)
    for req in missing:
        groups[req.params].append(req)
    planned: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for req in missing:
        samples, budget = planned[req.benchmark]
        planned[req.benchmark] = (samples + 1, budget + req.params.max_new_tokens)
    view = GenerationProgress(planned, progress)
    meter = meter or SpeedMeter()
    writer = GenerationWriter(store)
    calls = 0
    try:
        for params, reqs in groups.items():
            # One request per conversation: backends expand params.n themselves.
            firsts = [r for r in reqs if r.sample_index == 0]
            by_item = {(r.benchmark, r.item.id, r.sample_index): r for r in reqs}
            with meter.call(engine_stats(backend)):
                for completion in backend.generate([r.conversation for r in firsts], params, view.on_tokens):
                    first = firsts[completion.index]
                    j = int(completion.meta.get("sample", 0))
                    match = by_item.get((first.benchmark, first.item.id, j))
                    if match is None:
                        continue
                    writer.add(_generation_row(match, completion))
                    calls += 1
                    meter.add(match.benchmark, completion)
                    view.finished(match.benchmark)
    finally:
        writer.flush()  # on an exception too: what finished is kept
        view.close()
    return calls


def _generation_row(req: Request, completion: Completion) -> dict[str, Any]:
    return {
        "key": req.key,
        "benchmark": req.benchmark,
        "sample_id": req.item.id,
        "sample_index": req.sample_index,
        "prompt": req.conversation,
        "output": completion.text,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "finish_reason": completion.finish_reason,
        "latency_s": completion.latency_s,
        "meta": to_jsonable(completion.meta),
    }


@dataclass
class EvalOutcome:
    run_id: str
    resumed: bool
    model_calls: int
    cached: int
    results: list[dict[str, Any]]
    status: str = "complete"  # or "incomplete": failed model requests, judgments missing (budget, judge errors)
    incomplete: dict[str, dict[str, Any]] = field(default_factory=dict)  # benchmark -> missing count and reason
    speed: dict[str, Any] = field(default_factory=dict)  # summary["speed"]: fusebench.speed.SpeedMeter.record


def _judged(planned: Sequence[PlannedBenchmark]) -> list[PlannedBenchmark]:
    return [p for p in planned if p.spec.judge is not None]


def _judge_stage(
    config: EvalConfig, store: Store, planned: Sequence[PlannedBenchmark], make_judge: Callable[[str], Backend] | None
) -> JudgeStage | None:
    """The judge stage of a run with judged benchmarks; judge backends are built (keys checked) before any model."""
    from fusebench.judging.stage import JudgeOptions, JudgeStage, make_judge_backend

    judged = _judged(planned)
    if not judged:
        return None
    options = config.judge or JudgeOptions()
    stage = JudgeStage(
        store, options, make_judge or (lambda model: make_judge_backend(options, model)), config.progress
    )
    stage.check_budget(p.spec for p in judged)
    for p in judged:
        assert p.spec.judge is not None
        stage.backend(options.model_for(p.spec.judge))
    return stage


def run_eval(
    config: EvalConfig,
    store: Store,
    make_backend: Callable[[], Backend],
    make_judge: Callable[[str], Backend] | None = None,
) -> EvalOutcome:
    """Run (or resume) one eval and return its per-benchmark results. `make_judge(model)` builds a judge backend
    (default: from config.judge, an OpenAI-compatible API unless it says hf). SIGINT and SIGTERM commit what
    finished, mark the run "interrupted" and raise exits.Interrupted (its run_id set)."""
    with signals_raise():
        return _run_eval(config, store, make_backend, make_judge)


def _run_eval(
    config: EvalConfig,
    store: Store,
    make_backend: Callable[[], Backend],
    make_judge: Callable[[str], Backend] | None,
) -> EvalOutcome:
    started, meter = time.perf_counter(), SpeedMeter()
    planned = plan_benchmarks(config)
    stage = _judge_stage(config, store, planned, make_judge)
    with meter.stage("model_prepare"):  # resolve (a GGUF converted on first use), tokenizer; weights load lazily
        backend = make_backend()
    fingerprint = backend.fingerprint()
    settings = _run_settings(config, planned, stage)
    config_hash = stable_hash({"fp": fingerprint, "backend": config.backend, "settings": settings.to_json()})
    env = {**environment(), "backend": backend.describe()}
    run_id = store.find_resumable_run(config_hash)
    resumed = run_id is not None
    if run_id is None:
        run_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        store.create_run(
            {
                "id": run_id,
                "config_hash": config_hash,
                "model": fingerprint.get("model", config.model or "default"),
                "model_fingerprint": fingerprint,
                "backend": config.backend,
                "suite": None if config.benchmarks else config.suite,
                "benchmarks": [p.spec.id for p in planned],
                "environment": env,
                "tags": config.tags,
            },
            settings,
        )
    else:
        store.mark_running(run_id, env)
    try:
        with meter.stage("generate"):
            requests, calls, cached = _generate_turns(config, store, backend, planned, fingerprint, meter)
        failed = unanswered_items(requests, store.get_generations(r.key for r in requests))
        with meter.stage("judge"):
            judgments, fingerprints = _run_judges(stage, store, planned, requests, failed)
        with meter.stage("score"):
            results = score_run(
                store, run_id, planned, requests, judgments, failed, config.progress, reuse_scores=not config.no_cache
            )
        incomplete = _incomplete(judgments, stage, failed)
        status = "incomplete" if incomplete else "complete"
        speed = meter.record(backend, wall_s=time.perf_counter() - started, cached=cached)
        if stage is not None and stage.speed.backend.samples:
            speed["judge"] = stage.speed.tallies()
        store.finish_run(run_id, status, RunSummary(results, fingerprints, incomplete, speed))
    except KeyboardInterrupt as exc:  # SIGINT/SIGTERM: what finished is committed (generate_missing's finally)
        interrupted = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        store.finish_run(run_id, "interrupted", None)
        interrupted.run_id = run_id
        raise interrupted from None
    except BaseException:
        store.finish_run(run_id, "failed", None)
        raise
    return EvalOutcome(run_id, resumed, calls, cached, results, status, incomplete, speed)


def _run_settings(config: EvalConfig, planned: Sequence[PlannedBenchmark], stage: JudgeStage | None) -> RunSettings:
    """What a run records of its configuration (hashed into its config hash: the resume key)."""
    judges = {}
    if stage is not None:  # the judge is part of the configuration; budget and prices are not (raise it, resume)
        judges = {p.spec.id: stage.describe(p.spec) for p in _judged(planned)}
    per_benchmark = {
        p.spec.id: BenchmarkSettings(
            version=p.spec.version,
            n_items=len(p.data.items),
            params=p.params.to_dict(),
            params_by={value: params.to_dict() for value, params in p.params_by.items()},
            data_options=p.spec.data.options,  # e.g. GPQA's option-shuffle seed
            judge=judges.get(p.spec.id),
        )
        for p in planned
    }
    options = None
    if stage is not None:
        o = stage.options
        options = {"model": o.model, "backend": o.backend, "max_tokens": o.max_tokens}
    return RunSettings(config.seed, config.limit, config.generation, per_benchmark, options)


def _generate_turns(
    config: EvalConfig,
    store: Store,
    backend: Backend,
    planned: Sequence[PlannedBenchmark],
    fingerprint: dict[str, Any],
    meter: SpeedMeter | None = None,
) -> tuple[list[Request], int, int]:
    """Generate turn 0 of every benchmark, then each later turn of the multi-turn ones; (requests, calls, cached)."""
    all_requests: list[Request] = []
    calls = cached_count = 0
    requests = build_requests(planned, fingerprint)
    turn = 0
    while requests:
        stored = {} if config.no_cache else store.get_generations(r.key for r in requests)
        cached = {key: g for key, g in stored.items() if answered(g)}
        missing = [r for r in requests if r.key not in cached]
        # with n > 1 the backend produces all samples of an item together: regenerate the whole item
        missing_items = {(r.benchmark, r.item.id) for r in missing}
        missing = [r for r in requests if (r.benchmark, r.item.id) in missing_items]
        calls += generate_missing(backend, store, missing, config.progress, meter) if missing else 0
        cached_count += len(requests) - len(missing)
        all_requests += requests
        turn += 1
        continuing = [r for r in requests if _turns_of(planned, r.benchmark) > turn]
        if not continuing:
            break
        history = next_turn_history(continuing, store.get_generations(r.key for r in continuing))
        requests = build_requests(planned, fingerprint, turn, history)
    return all_requests, calls, cached_count


def _turns_of(planned: Sequence[PlannedBenchmark], benchmark: str) -> int:
    return next(p.spec.turns for p in planned if p.spec.id == benchmark)


def _model_outputs(
    requests: Sequence[Request], stored: dict[str, dict[str, Any]], benchmark: str
) -> dict[str, list[str]]:
    """item id -> the first sample's answer per turn."""
    outputs: dict[str, list[str]] = defaultdict(list)
    for r in sorted((r for r in requests if r.benchmark == benchmark and r.sample_index == 0), key=lambda r: r.turn):
        outputs[r.item.id].append(stored[r.key]["output"])
    return dict(outputs)


def _run_judges(
    stage: JudgeStage | None,
    store: Store,
    planned: Sequence[PlannedBenchmark],
    requests: Sequence[Request],
    failed: dict[str, set[str]],
    fingerprints: dict[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, BenchmarkJudgments], dict[str, dict[str, Any]]]:
    """Judge every judged benchmark's answered items (`failed`: items without an answer, left out); fingerprints
    (from a stored run) stand in for the backends."""
    from fusebench.judging.stage import build_tasks

    judged = _judged(planned)
    if stage is None or not judged:
        return {}, {}
    stored = store.get_generations(r.key for r in requests if r.benchmark in {p.spec.id for p in judged})
    judgments = {}
    used = {}
    for p in judged:
        assert p.spec.judge is not None
        items = [i for i in p.data.items if i.id not in failed.get(p.spec.id, ())]
        tasks = build_tasks(p.spec, items, _model_outputs(requests, stored, p.spec.id))
        if fingerprints is None:
            fp = stage.backend(stage.options.model_for(p.spec.judge)).fingerprint()
        else:
            fp = fingerprints[p.spec.id]
        used[p.spec.id] = fp
        judgments[p.spec.id] = stage.judge(p.spec, tasks, fp)
    return judgments, used


def _incomplete(
    judgments: dict[str, BenchmarkJudgments], stage: JudgeStage | None, failed: dict[str, set[str]]
) -> dict[str, dict[str, Any]]:
    """benchmark -> what it lacks: "errors" (items whose model request failed), "missing" judgments, a reason."""
    incomplete: dict[str, dict[str, Any]] = {
        name: {"errors": len(ids), "reason": "model requests failed"} for name, ids in failed.items()
    }
    reason = "judge budget reached" if stage is not None and stage.budget_hit else "judge requests failed"
    for name, j in judgments.items():
        if j.missing:
            incomplete.setdefault(name, {}).update(missing=j.missing, reason=reason)
    return incomplete


def describe_incomplete(incomplete: dict[str, dict[str, Any]]) -> str:
    """One line: what each incomplete benchmark lacks, e.g. "gsm8k: 2 items' model requests failed"."""
    parts = []
    for name, v in incomplete.items():
        lacks = [f"{v['errors']} items' model requests failed"] if v.get("errors") else []
        if v.get("missing"):
            lacks.append(f"{v['missing']} judgments missing ({v['reason']})")
        parts.append(f"{name}: {', '.join(lacks)}")
    return "; ".join(parts)


@dataclass
class ScoreCache:
    """The scores of a benchmark's requests already computed by the same scorer code (by position), and their keys,
    so that the ones computed now are remembered."""

    store: Store
    keys: list[str]
    known: dict[int, Score]

    @classmethod
    def open(cls, store: Store, spec: BenchmarkSpec, reqs: Sequence[Request], reuse: bool) -> ScoreCache:
        code = scorer_code(scorer_of(spec))
        if code is None:
            return cls(store, [], {})
        keys = [
            score_key(
                scorer=spec.scorer,
                scorer_code=code,
                benchmark=spec.id,
                benchmark_version=spec.version,
                answer=spec.answer,
                generation_key=r.key,
                item=to_jsonable({"row": r.item.row, "target": r.item.target}),
            )
            for r in reqs
        ]
        found = store.get_cached_scores(keys) if reuse else {}
        known = {
            i: Score(found[k]["score"], found[k]["extracted"], found[k]["reason"] or "")
            for i, k in enumerate(keys)
            if k in found
        }
        return cls(store, keys, known)

    def remember(self, scores: Sequence[Score]) -> None:
        """Store the reusable scores that were computed, not read."""
        fresh = [
            {"key": k, "score": s.value, "extracted": s.extracted, "reason": s.reason}
            for i, (k, s) in enumerate(zip(self.keys, scores, strict=True))
            if i not in self.known and s.reusable
        ]
        if fresh:
            self.store.put_cached_scores(fresh)


def score_run(
    store: Store,
    run_id: str,
    planned: Sequence[PlannedBenchmark],
    requests: Sequence[Request],
    judgments: dict[str, BenchmarkJudgments] | None = None,
    failed: dict[str, set[str]] | None = None,
    progress: bool = False,
    reuse_scores: bool = True,
) -> list[dict[str, Any]]:
    """Score stored generations of a run and store per-sample scores and per-benchmark results. Items in `failed`
    (a model request failed) are not scored, and a benchmark with any has no score: details["errors"] counts them,
    like judged benchmarks with missing judgments, a partial result is never reported as the benchmark's.
    `reuse_scores`: take the score of an answer that the same scorer code already scored (the score cache)."""
    stored = store.get_generations(r.key for r in requests)
    by_bench: dict[str, list[Request]] = defaultdict(list)
    for req in requests:
        by_bench[req.benchmark].append(req)
    results = []
    for p in planned:
        failed_ids = (failed or {}).get(p.spec.id, set())
        if p.spec.judge is not None:
            if judgments is None or p.spec.id not in judgments:
                raise UsageError(f"{p.spec.id} is judged: its judgments are needed to score it")
            row = _store_judged(store, run_id, p, by_bench[p.spec.id], score_judged(judgments[p.spec.id]))
            results.append(_put_result(store, p, row, failed_ids))
            continue
        reqs = [r for r in by_bench[p.spec.id] if r.item.id not in failed_ids]
        if not reqs:
            row = {**_result_row(run_id, p), "n": 0, "score": None, "ci_low": None, "ci_high": None}
            row["details"] = {"n_samples": 0}
            results.append(_put_result(store, p, row, failed_ids))
            continue
        outputs = [stored[r.key]["output"] for r in reqs]
        cache = ScoreCache.open(store, p.spec, reqs, reuse_scores)
        result = score_benchmark(p.spec, [r.item for r in reqs], outputs, progress, cache.known)
        cache.remember(result.scores)
        store.put_scores(
            [
                {
                    "run_id": run_id,
                    "benchmark": p.spec.id,
                    "sample_id": r.item.id,
                    "sample_index": r.sample_index,
                    "generation_key": r.key,
                    "score": s.value,
                    "extracted": s.extracted,
                    "target": to_jsonable(r.item.target),
                    "reason": s.reason,
                }
                for r, s in zip(reqs, result.scores, strict=True)
            ]
        )
        row = _result_row(run_id, p)
        row.update(
            n=result.n_items,
            score=result.interval.estimate,
            ci_low=result.interval.low,
            ci_high=result.interval.high,
            details=result.details,
        )
        results.append(_put_result(store, p, row, failed_ids))
    return results


def _put_result(store: Store, p: PlannedBenchmark, row: dict[str, Any], failed_ids: set[str]) -> dict[str, Any]:
    """Store a result row; with failed items, without a score and with their count under details["errors"]."""
    if failed_ids:
        row.update(
            n=len(p.data.items),
            score=None,
            ci_low=None,
            ci_high=None,
            details={**row["details"], "errors": len(failed_ids)},
        )
    return store.put_benchmark_result(row, scale_of(p.spec))


def _generation_record(p: PlannedBenchmark) -> dict[str, Any]:
    """A result's generation params; per-item overrides (generation_by) under "by", keyed "field=value"."""
    record = p.params.to_dict()
    by = p.spec.generation_by
    if by and p.params_by:
        record["by"] = {f"{by.field}={value}": params.to_dict() for value, params in p.params_by.items()}
    return record


def _result_row(run_id: str, p: PlannedBenchmark) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "benchmark": p.spec.id,
        "version": p.spec.version,
        "category": p.spec.category,
        "metric": p.spec.metric,
        "generation": _generation_record(p),
        "data_source": p.data.source,
        "data_checksum": p.data.checksum,
    }


def _store_judged(
    store: Store, run_id: str, p: PlannedBenchmark, reqs: Sequence[Request], judged: JudgedScore
) -> dict[str, Any]:
    """Per-item scores (items with a usable verdict; keyed to the item's last-turn answer); the result row."""
    last = {r.item.id: r for r in sorted((r for r in reqs if r.sample_index == 0), key=lambda r: r.turn)}
    store.put_scores(
        [
            {
                "run_id": run_id,
                "benchmark": p.spec.id,
                "sample_id": item_id,
                "sample_index": 0,
                "generation_key": last[item_id].key,
                "score": value,
                "extracted": judged.verdicts.get(item_id),
                "target": None,
                "reason": "judged",
            }
            for item_id, value in judged.item_scores.items()
        ]
    )
    row = _result_row(run_id, p)
    row.update(
        n=len(p.data.items),
        score=judged.score,
        ci_low=judged.ci[0] if judged.ci else None,
        ci_high=judged.ci[1] if judged.ci else None,
        details=to_jsonable(judged.details),
    )
    return row


def rescore_run(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Re-score a stored run's outputs (e.g. after an extraction fix) without calling any model or judge."""
    from fusebench.judging.stage import JudgeOptions, JudgeStage

    run = store.get_run(run_id)
    settings = RunSettings.from_json(run["settings"])
    if settings.imported:
        raise UsageError(f"run {run['id']} was imported from lm-eval: its scores are lm-eval's (re-import to update)")
    planned = plan_from_run(run)
    requests = _stored_requests(store, planned, run["model_fingerprint"])
    missing = len({r.key for r in requests} - store.get_generations(r.key for r in requests).keys())
    if missing:
        raise UsageError(f"run {run['id']} is missing {missing} generations; rerun the eval to finish it")
    summary = RunSummary.from_json(run["summary"])
    stage = None
    if settings.judge_options:
        stage = JudgeStage(store, JudgeOptions(**settings.judge_options), None, recorded=settings.judges())
    failed = unanswered_items(requests, store.get_generations(r.key for r in requests))
    judgments, _ = _run_judges(stage, store, planned, requests, failed, summary.judge_fingerprints)
    unjudged = [name for name, j in judgments.items() if j.missing]
    if unjudged:
        raise UsageError(f"run {run['id']} is missing judgments ({', '.join(unjudged)}); rerun the eval to finish it")
    results = score_run(store, run["id"], planned, requests, judgments, failed, reuse_scores=False)
    incomplete = _incomplete(judgments, None, failed)
    rescored = replace(summary, results=results, incomplete=incomplete, rescored_at=now().isoformat())
    store.record_rescore(run["id"], "incomplete" if incomplete else "complete", rescored)
    return results


def _stored_requests(store: Store, planned: Sequence[PlannedBenchmark], fingerprint: dict[str, Any]) -> list[Request]:
    """Every turn's requests of a stored run (later turns built from the stored answers)."""
    requests = build_requests(planned, fingerprint)
    all_requests: list[Request] = []
    turn = 0
    while requests:
        all_requests += requests
        turn += 1
        continuing = [r for r in requests if _turns_of(planned, r.benchmark) > turn]
        if not continuing:
            break
        stored = store.get_generations(r.key for r in continuing)
        requests = build_requests(planned, fingerprint, turn, next_turn_history(continuing, stored))
    return all_requests
