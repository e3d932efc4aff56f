"""One eval: plan the requests, reuse cached generations, generate the rest, score, aggregate, store."""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from fusebench.backends.base import Backend, Completion, Conversation, GenParams
from fusebench.data import Item, LoadedData, load_items
from fusebench.environment import environment
from fusebench.errors import UsageError
from fusebench.keys import generation_key, stable_hash
from fusebench.prompts import build_conversation
from fusebench.scoring import score_benchmark
from fusebench.spec import BenchmarkSpec, get_benchmark, get_suite
from fusebench.store import Store, to_jsonable

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5


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


@dataclass
class PlannedBenchmark:
    spec: BenchmarkSpec
    data: LoadedData | None  # None: not implemented yet
    params: GenParams | None


@dataclass
class Request:
    benchmark: str
    item: Item
    sample_index: int
    conversation: Conversation
    key: str


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
    planned = []
    for name, suite_limit in entries:
        spec = get_benchmark(name)
        if not spec.implemented:
            planned.append(PlannedBenchmark(spec, None, None))
            continue
        limits = [v for v in (suite_limit, config.limit) if v is not None]
        data = load_items(spec, min(limits) if limits else None)
        merged = {**spec.generation, **suite_generation, **config.generation, "seed": config.seed}
        merged["stop"] = tuple(merged.get("stop", ()))
        try:
            params = GenParams(**merged)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"bad generation parameters for {name}: {exc}") from exc
        planned.append(PlannedBenchmark(spec, data, params))
    return planned


def build_requests(planned: Sequence[PlannedBenchmark], fingerprint: dict[str, Any]) -> list[Request]:
    requests = []
    for p in planned:
        if p.data is None or p.params is None:
            continue
        params = p.params.to_dict()
        for item in p.data.items:
            conv = build_conversation(p.spec.prompt, item)
            for j in range(p.params.n):
                key = generation_key(
                    model_fingerprint=fingerprint,
                    benchmark=p.spec.generation_id,
                    benchmark_version=p.spec.version,
                    sample_id=item.id,
                    sample_index=j,
                    prompt=conv,
                    gen_params=params,
                )
                requests.append(Request(p.spec.id, item, j, conv, key))
    return requests


class _Writer:
    """Buffers completions and commits them at most every FLUSH_SECONDS: a kill loses under a second."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows: list[dict[str, Any]] = []
        self.last = time.monotonic()

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if time.monotonic() - self.last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.store.put_generations(self.rows)
        self.rows = []
        self.last = time.monotonic()


def generate_missing(
    backend: Backend,
    store: Store,
    planned: Sequence[PlannedBenchmark],
    missing: list[Request],
    progress: bool,
) -> int:
    """Generate every missing request, grouped by GenParams; returns the number of model calls made."""
    params_of = {p.spec.id: p.params for p in planned}
    groups: dict[GenParams, list[Request]] = defaultdict(list)
    for req in missing:
        params = params_of[req.benchmark]
        assert params is not None
        groups[params].append(req)
    totals: dict[str, int] = defaultdict(int)
    for req in missing:
        totals[req.benchmark] += 1
    bars = {
        name: tqdm(total=total, desc=f"{name:>12}", unit="sample", position=i, disable=not progress, leave=True)
        for i, (name, total) in enumerate(totals.items())
    }
    writer = _Writer(store)
    calls = 0
    try:
        for params, reqs in groups.items():
            # One request per conversation: backends expand params.n themselves.
            firsts = [r for r in reqs if r.sample_index == 0]
            by_item = {(r.benchmark, r.item.id, r.sample_index): r for r in reqs}
            for completion in backend.generate([r.conversation for r in firsts], params):
                first = firsts[completion.index]
                j = int(completion.meta.get("sample", 0))
                match = by_item.get((first.benchmark, first.item.id, j))
                if match is None:
                    continue
                writer.add(_generation_row(match, completion))
                calls += 1
                bars[match.benchmark].update(1)
    finally:
        writer.flush()  # on an exception too: what finished is kept
        for bar in bars.values():
            bar.close()
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
    not_implemented: list[str]


def run_eval(
    config: EvalConfig,
    store: Store,
    make_backend: Callable[[], Backend],
) -> EvalOutcome:
    """Run (or resume) one eval and return its per-benchmark results."""
    planned = plan_benchmarks(config)
    backend = make_backend()
    fingerprint = backend.fingerprint()
    settings = {
        "seed": config.seed,
        "limit": config.limit,
        "generation": config.generation,
        "per_benchmark": {
            p.spec.id: {
                "version": p.spec.version,
                "n_items": len(p.data.items),
                "params": p.params.to_dict(),
                "data_options": p.spec.data.options,  # e.g. GPQA's option-shuffle seed
            }
            for p in planned
            if p.data is not None and p.params is not None
        },
    }
    config_hash = stable_hash({"fp": fingerprint, "backend": config.backend, "settings": settings})
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
                "settings": settings,
                "environment": env,
                "tags": config.tags,
            }
        )
    else:
        store.mark_running(run_id, env)
    try:
        requests = build_requests(planned, fingerprint)
        cached = {} if config.no_cache else store.get_generations(r.key for r in requests)
        missing = [r for r in requests if r.key not in cached]
        # with n > 1 the backend produces all samples of an item together: regenerate the whole item
        missing_items = {(r.benchmark, r.item.id) for r in missing}
        missing = [r for r in requests if (r.benchmark, r.item.id) in missing_items]
        calls = generate_missing(backend, store, planned, missing, config.progress) if missing else 0
        results = score_run(store, run_id, planned, requests)
    except BaseException:
        store.finish_run(run_id, "failed", None)
        raise
    not_implemented = [p.spec.id for p in planned if p.data is None]
    store.finish_run(run_id, "complete", {"results": results, "not_implemented": not_implemented})
    return EvalOutcome(run_id, resumed, calls, len(requests) - len(missing), results, not_implemented)


def score_run(
    store: Store, run_id: str, planned: Sequence[PlannedBenchmark], requests: Sequence[Request]
) -> list[dict[str, Any]]:
    """Score stored generations of a run and store per-sample scores and per-benchmark results."""
    stored = store.get_generations(r.key for r in requests)
    by_bench: dict[str, list[Request]] = defaultdict(list)
    for req in requests:
        by_bench[req.benchmark].append(req)
    results = []
    for p in planned:
        if p.data is None or p.params is None:
            continue
        reqs = by_bench[p.spec.id]
        outputs = [stored[r.key]["output"] for r in reqs]
        result = score_benchmark(p.spec, [r.item for r in reqs], outputs)
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
        row = {
            "run_id": run_id,
            "benchmark": p.spec.id,
            "version": p.spec.version,
            "category": p.spec.category,
            "metric": p.spec.metric,
            "n": result.n_items,
            "score": result.interval.estimate,
            "ci_low": result.interval.low,
            "ci_high": result.interval.high,
            "generation": p.params.to_dict(),
            "data_source": p.data.source,
            "data_checksum": p.data.checksum,
            "details": result.details,
        }
        store.put_benchmark_result(row)
        results.append(row)
    return results


def plan_from_run(run: dict[str, Any]) -> list[PlannedBenchmark]:
    """Rebuild a stored run's plan (same items, same params) to rescore it without a model."""
    planned = []
    for name in run["benchmarks"]:
        spec = get_benchmark(name)
        stored = run["settings"]["per_benchmark"].get(name)
        if stored is None:
            planned.append(PlannedBenchmark(spec, None, None))
            continue
        params = {**stored["params"], "stop": tuple(stored["params"]["stop"])}
        planned.append(PlannedBenchmark(spec, load_items(spec, stored["n_items"]), GenParams(**params)))
    return planned


def rescore_run(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Re-score a stored run's outputs (e.g. after an extraction fix) without calling any model."""
    run = store.get_run(run_id)
    planned = plan_from_run(run)
    requests = build_requests(planned, run["model_fingerprint"])
    missing = len(requests) - len(store.get_generations(r.key for r in requests))
    if missing:
        raise UsageError(f"run {run['id']} is missing {missing} generations; rerun the eval to finish it")
    results = score_run(store, run["id"], planned, requests)
    store.finish_run(run["id"], "complete", {**(run["summary"] or {}), "results": results})
    return results
