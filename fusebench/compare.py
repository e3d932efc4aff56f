"""Compare stored runs: align items, paired deltas with CIs, tests, Holm, MDE, and setting mismatches.

Pure logic over the store; rendering lives in `fusebench.report.compare_table`. Units: a benchmark's
score is shown as stored with its result, on the scale stored beside it (`fusebench.scale.Scale`: points 0-100, or
a 1-10 rating). Deltas come from the per-item scores: per item, the mean score over its samples; the delta is the
mean of the per-item differences over the items both runs share, in the same units.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusebench.errors import UsageError
from fusebench.scale import Scale
from fusebench.spec import CATEGORIES, averaged
from fusebench.stats import NO_VARIATION, Interval, holm, min_detectable_difference, paired_delta_ci, paired_test
from fusebench.store import Store, scale_of_result

ALPHA = 0.05


@dataclass(frozen=True)
class RunInfo:
    """The identity of one compared run."""

    id: str
    model: str
    label: str
    status: str
    tags: dict[str, str]
    started_at: dt.datetime | None


@dataclass(frozen=True)
class RunData:
    """One run as loaded for comparison: its results rows and per-item scores."""

    info: RunInfo
    results: dict[str, dict[str, Any]]  # benchmark -> its stored result row (Store.get_benchmark_results)
    items: dict[str, dict[str, float]]  # benchmark -> sample_id -> mean score over the item's samples


@dataclass(frozen=True)
class PairedResult:
    """`other - base` on one benchmark over the items both runs share, in the benchmark's units."""

    n_shared: int
    delta: Interval
    test: str  # "mcnemar" | "permutation"
    p: float
    p_holm: float
    mde: float | None  # minimum detectable difference at 80% power, two-sided alpha 0.05; None: see mde_unavailable
    mde_unavailable: str = ""  # why no MDE can be estimated (stats.NO_VARIATION)

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.p_holm < alpha


@dataclass(frozen=True)
class BenchmarkRow:
    """One benchmark across the compared runs (None where a run lacks it)."""

    benchmark: str
    category: str
    metric: str
    scores: tuple[float | None, ...]
    n: tuple[int | None, ...]
    deltas: tuple[PairedResult | None, ...]  # one per run after the base
    scale: Scale  # as stored with the first run's result

    @property
    def normaliser(self) -> float:
        """Factor to 0-100 points: 10 for a 1-10 rating (the normalised average and gate count in these)."""
        return self.scale.to_percent


@dataclass(frozen=True)
class Averages:
    """Plain and normalised means of the scores over the benchmarks every run has."""

    benchmarks: tuple[str, ...]
    plain: tuple[float | None, ...]
    normalised: tuple[float | None, ...]


@dataclass(frozen=True)
class Comparison:
    """Everything `compare` shows: runs, per-benchmark rows, averages and warnings."""

    runs: tuple[RunInfo, ...]
    rows: tuple[BenchmarkRow, ...]
    averages: Averages
    flags: tuple[str, ...]
    alpha: float = ALPHA
    judge_mismatches: tuple[str, ...] = ()  # judged benchmarks whose runs used different judges


def resolve_run(store: Store, ref: str, runs_: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A run by id prefix, else the latest complete run of a model (full name or its last path part)."""
    all_runs = list(runs_) if runs_ is not None else store.list_runs()
    exact = [r for r in all_runs if r["id"] == ref]
    by_id = exact or [r for r in all_runs if r["id"].startswith(ref)]
    if len(by_id) == 1:
        return by_id[0]
    if len(by_id) > 1:
        raise UsageError(f"run id prefix {ref!r} is ambiguous: {', '.join(r['id'] for r in by_id[:5])}")
    by_model = [r for r in all_runs if r["status"] == "complete" and ref in (r["model"], Path(r["model"]).name)]
    if not by_model:
        raise UsageError(f"no run id starts with {ref!r} and no complete run of a model named {ref!r}")
    return max(by_model, key=lambda r: (r["started_at"], r["id"]))


def load_runs(store: Store, refs: Sequence[str], benchmarks: Sequence[str] | None = None) -> list[RunData]:
    """Resolve and load the runs named by `refs` (id prefixes or model names); labels are made unique."""
    if not refs:
        raise UsageError("name at least one run")
    all_runs = store.list_runs()
    rows = [resolve_run(store, ref, all_runs) for ref in refs]
    seen = [r["id"] for r in rows]
    if len(set(seen)) != len(seen):
        raise UsageError(f"the same run was named twice: {', '.join(seen)}")
    labels = _labels(rows)
    loaded = []
    for run, label in zip(rows, labels, strict=True):
        info = RunInfo(run["id"], run["model"], label, run["status"], dict(run["tags"] or {}), run["started_at"])
        results = {r["benchmark"]: r for r in store.get_benchmark_results(run["id"])}
        if benchmarks is not None:
            results = {b: r for b, r in results.items() if b in benchmarks}
        loaded.append(RunData(info, results, store.item_means(run["id"], benchmarks)))
    if benchmarks is not None:
        unknown = sorted(set(benchmarks) - {b for d in loaded for b in d.results})
        if unknown:
            raise UsageError(f"no compared run has benchmark(s): {', '.join(unknown)}")
    return loaded


def _labels(rows: Sequence[dict[str, Any]]) -> list[str]:
    names = [Path(r["model"]).name or r["model"] for r in rows]
    return [n if names.count(n) == 1 else f"{n} ({r['id']})" for n, r in zip(names, rows, strict=True)]


def compare_runs(runs_: Sequence[RunData], alpha: float = ALPHA) -> Comparison:
    """Compare every run against the first (the base); Holm corrects across all deltas of the table."""
    if not runs_:
        raise UsageError("nothing to compare")
    base = runs_[0]
    order = {c: i for i, c in enumerate(CATEGORIES)}
    names = sorted(
        {b for r in runs_ for b in r.results},
        key=lambda b: (order.get(_first(runs_, b)["category"], len(order)), b),
    )
    raw: list[list[PairedResult | None]] = []
    for bench in names:
        raw.append([_paired(bench, base, other) for other in runs_[1:]])
    tested = [d for ds in raw for d in ds if d is not None]
    adjusted = iter(holm([d.p for d in tested])) if tested else iter(())
    rows = []
    for bench, deltas in zip(names, raw, strict=True):
        first = _first(runs_, bench)
        scores_ = tuple(_score(r, bench) for r in runs_)
        n = tuple(r.results[bench]["n"] if bench in r.results else None for r in runs_)
        fixed = tuple(None if d is None else replace(d, p_holm=next(adjusted)) for d in deltas)
        rows.append(BenchmarkRow(bench, first["category"], first["metric"], scores_, n, fixed, scale_of_result(first)))
    flags = [flag for other in runs_[1:] for flag in mismatch_flags(base, other)]
    flags = [
        f"{r.info.label}: run is {r.info.status}, not complete" for r in runs_ if r.info.status != "complete"
    ] + flags
    averages = _averages(rows, len(runs_))
    mismatched = judge_mismatches(runs_)
    return Comparison(tuple(r.info for r in runs_), tuple(rows), averages, tuple(flags), alpha, mismatched)


def _judge_of(run: RunData, bench: str) -> Any:
    return ((run.results.get(bench) or {}).get("details") or {}).get("judge")


def judge_mismatches(runs_: Sequence[RunData]) -> tuple[str, ...]:
    """Benchmarks that some run judged and the compared runs having it did not all judge alike."""
    names = sorted({b for r in runs_ for b in r.results})
    out = []
    for bench in names:
        judges = [_judge_of(r, bench) for r in runs_ if bench in r.results]
        if any(judges) and any(j != judges[0] for j in judges):
            out.append(bench)
    return tuple(out)


def compare(
    store: Store, refs: Sequence[str], benchmarks: Sequence[str] | None = None, alpha: float = ALPHA
) -> Comparison:
    """Load the named runs and compare them against the first."""
    return compare_runs(load_runs(store, refs, benchmarks), alpha)


def check_judges(comparison: Comparison, allow_mismatch: bool = False) -> None:
    """Refuse (UsageError) a comparison of judged benchmarks whose runs used different judges (model, prompt
    version, baseline or judge params), unless allow_mismatch."""
    if not comparison.judge_mismatches or allow_mismatch:
        return
    names = comparison.judge_mismatches
    details = [f for f in comparison.flags if any(f.startswith(f"{b}: judge ") for b in names)]
    raise UsageError(
        "scores from different judges are not comparable: "
        + "; ".join(details)
        + " (pass --allow-judge-mismatch to compare anyway)"
    )


def _first(runs_: Sequence[RunData], bench: str) -> dict[str, Any]:
    return next(r.results[bench] for r in runs_ if bench in r.results)


def _score(run: RunData, bench: str) -> float | None:
    row = run.results.get(bench)
    return None if row is None or row["score"] is None else float(row["score"])


def _paired(bench: str, base: RunData, other: RunData) -> PairedResult | None:
    a_items, b_items = base.items.get(bench, {}), other.items.get(bench, {})
    shared = sorted(a_items.keys() & b_items.keys())
    if bench not in base.results or bench not in other.results or not shared:
        return None
    a = np.fromiter((a_items[k] for k in shared), np.float64, len(shared))
    b = np.fromiter((b_items[k] for k in shared), np.float64, len(shared))
    scale = scale_of_result(_first([base, other], bench))
    unit = scale.points_per_unit
    delta = paired_delta_ci(a.tolist(), b.tolist()).scaled(unit)
    test, p = paired_test(a.tolist(), b.tolist())
    mde = _mde(a, b, span(scale))
    if mde is None:
        return PairedResult(len(shared), delta, test, p, p, None, NO_VARIATION)
    return PairedResult(len(shared), delta, test, p, p, unit * mde)


def span(scale: Scale) -> float:
    """The best per-item score: 1 for a proportion, 10 for a 1-10 rating."""
    return scale.full / scale.points_per_unit


def _mde(a: NDArray[np.float64], b: NDArray[np.float64], span: float) -> float | None:
    """MDE in per-item units: paired (observed discordance) for 0/1 data, else unpaired at the base mean.

    Non-binary data are scaled to [0, 1] by `span`; there p(1-p) bounds the variance, so the figure is
    conservative. None when every item of both runs has the same score: no variance to estimate it from (the
    formula would say 0, a change of any size detectable).
    """
    if np.all(a == a[0]) and np.all(b == a[0]):
        return None
    binary = bool(np.all((a == 0) | (a == 1)) and np.all((b == 0) | (b == 1)))
    discordance = float(np.mean(a != b))
    if binary and discordance > 0:
        return min_detectable_difference(a.size, 0.0, paired_discordance=discordance)
    p = float(np.clip(np.concatenate([a, b]).mean() / span, 0.0, 1.0))
    return span * min_detectable_difference(a.size, p)


def _averages(rows: Sequence[BenchmarkRow], n_runs: int) -> Averages:
    counted = averaged(r.benchmark for r in rows)
    shared = [r for r in rows if all(s is not None for s in r.scores) and r.benchmark in counted]
    if not shared:
        return Averages((), (None,) * n_runs, (None,) * n_runs)
    plain = tuple(float(np.mean([r.scores[i] for r in shared])) for i in range(n_runs))
    norm = tuple(float(np.mean([r.normaliser * r.scores[i] for r in shared])) for i in range(n_runs))  # type: ignore[operator]
    return Averages(tuple(r.benchmark for r in shared), plain, norm)


def mismatch_flags(base: RunData, other: RunData) -> list[str]:
    """Setting differences that make `other` vs `base` less than like-for-like, one line each."""
    flags = []
    pair = f"{base.info.label} vs {other.info.label}"  # the order every note's "x vs y" values follow
    for bench in sorted(base.results.keys() | other.results.keys()):
        ra, rb = base.results.get(bench), other.results.get(bench)
        if ra is None or rb is None:
            flags.append(f"{bench}: missing in {base.info.label if ra is None else other.info.label}")
            continue
        notes = []
        if ra["version"] != rb["version"]:
            notes.append(f"benchmark version {ra['version']} vs {rb['version']}")
        if ra["metric"] != rb["metric"]:
            notes.append(f"metric {ra['metric']} vs {rb['metric']}")
        if ra["scale"] != rb["scale"]:
            notes.append(f"scale {_scale_text(ra)} vs {_scale_text(rb)}")
        params = _param_diff(ra["generation"] or {}, rb["generation"] or {})
        if params:
            notes.append("generation params differ (" + ", ".join(params) + ")")
        notes += _item_notes(ra, rb, base.items.get(bench, {}), other.items.get(bench, {}))
        judge_a, judge_b = (ra["details"] or {}).get("judge"), (rb["details"] or {}).get("judge")
        if judge_a != judge_b:
            notes.append(f"judge {judge_a} vs {judge_b}")
        flags += [f"{bench}: {note} [{pair}]" for note in notes]
    return flags


def _scale_text(row: dict[str, Any]) -> str:
    scale = scale_of_result(row)
    return f"0-{scale.full:g}" + ("" if scale.higher_is_better else " (lower is better)")


def _param_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Differing generation params; per-item ones ("by", e.g. MT-Bench's temperature per category) as
    "category=writing: temperature 0.0 vs 0.7", an item group missing on one side having that side's defaults."""
    by_a, by_b = a.get("by") or {}, b.get("by") or {}
    base_a = {k: v for k, v in a.items() if k != "by"}
    base_b = {k: v for k, v in b.items() if k != "by"}
    sampled = any(p.get("temperature", 0) for p in [base_a, base_b, *by_a.values(), *by_b.values()])
    diffs = _flat_diff(base_a, base_b, sampled)
    for group in sorted(by_a.keys() | by_b.keys()):
        diffs += [f"{group}: {d}" for d in _flat_diff(by_a.get(group, base_a), by_b.get(group, base_b), sampled)]
    return diffs


def _flat_diff(a: dict[str, Any], b: dict[str, Any], sampled: bool) -> list[str]:
    keys = sorted(k for k in a.keys() | b.keys() if k != "seed" or sampled)  # the seed matters when sampling
    return [f"{k} {a.get(k)} vs {b.get(k)}" for k in keys if a.get(k) != b.get(k)]


def _item_notes(ra: dict[str, Any], rb: dict[str, Any], ia: dict[str, float], ib: dict[str, float]) -> list[str]:
    notes = []
    shared = len(ia.keys() & ib.keys())
    if ra["n"] != rb["n"] or ia.keys() != ib.keys():
        notes.append(f"item sets differ: n {ra['n']} vs {rb['n']}, {shared} shared items (deltas use those)")
    elif ra["data_checksum"] != rb["data_checksum"]:
        notes.append("data checksums differ")
    return notes


@dataclass(frozen=True)
class ItemPair:
    """One item as answered by both runs (first sample of each)."""

    sample_id: str
    score_a: float
    score_b: float
    target: Any
    prompt: Any
    extracted_a: str | None
    extracted_b: str | None
    output_a: str
    output_b: str


@dataclass(frozen=True)
class Diff:
    """Items of one benchmark whose correctness flipped between two runs, with counts."""

    benchmark: str
    run_a: RunInfo
    run_b: RunInfo
    counts: dict[str, int]
    regressions: tuple[ItemPair, ...]  # right in A, wrong in B
    improvements: tuple[ItemPair, ...]  # wrong in A, right in B


def is_right(score: float, scale: Scale) -> bool:
    """An item counts as right when its mean score is at least half the scale (all samples for 0/1 data)."""
    return score >= 0.5 * span(scale)


def diff_runs(store: Store, ref_a: str, ref_b: str, benchmark: str) -> Diff:
    """Items of `benchmark` that went right->wrong or wrong->right from run A to run B."""
    run_a, run_b = load_runs(store, [ref_a, ref_b], [benchmark])
    for run in (run_a, run_b):
        if not run.items.get(benchmark):
            raise UsageError(f"run {run.info.id} has no scored items for {benchmark}")
    ia, ib = run_a.items[benchmark], run_b.items[benchmark]
    scale = scale_of_result(_first([run_a, run_b], benchmark))
    shared = sorted(ia.keys() & ib.keys(), key=natural_key)
    groups: dict[str, list[str]] = {"right_to_wrong": [], "wrong_to_right": [], "both_right": [], "both_wrong": []}
    for sid in shared:
        ra, rb = is_right(ia[sid], scale), is_right(ib[sid], scale)
        key = ("both_right" if rb else "right_to_wrong") if ra else ("wrong_to_right" if rb else "both_wrong")
        groups[key].append(sid)
    counts = {k: len(v) for k, v in groups.items()}
    counts["only_a"], counts["only_b"] = len(ia.keys() - ib.keys()), len(ib.keys() - ia.keys())
    flipped = set(groups["right_to_wrong"]) | set(groups["wrong_to_right"])
    pairs = _item_pairs(store, run_a, run_b, benchmark, flipped)
    return Diff(
        benchmark,
        run_a.info,
        run_b.info,
        counts,
        tuple(pairs[s] for s in groups["right_to_wrong"]),
        tuple(pairs[s] for s in groups["wrong_to_right"]),
    )


def _item_pairs(store: Store, a: RunData, b: RunData, benchmark: str, ids: set[str]) -> dict[str, ItemPair]:
    firsts = [first_samples(store, run.info.id, benchmark, ids) for run in (a, b)]
    gens = store.get_generations(s["generation_key"] for rows in firsts for s in rows.values())
    out = {}
    for sid in ids:
        sa, sb = firsts[0][sid], firsts[1][sid]
        ga, gb = gens.get(sa["generation_key"], {}), gens.get(sb["generation_key"], {})
        out[sid] = ItemPair(
            sid,
            a.items[benchmark][sid],
            b.items[benchmark][sid],
            sa["target"],
            ga.get("prompt", gb.get("prompt")),
            sa["extracted"],
            sb["extracted"],
            ga.get("output", "(generation not stored)"),
            gb.get("output", "(generation not stored)"),
        )
    return out


def first_samples(store: Store, run_id: str, benchmark: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    """sample_id -> the scores row of its first sample, for the given items of one run's benchmark."""
    first: dict[str, dict[str, Any]] = {}
    for row in store.get_scores(run_id, benchmark):
        sid = row["sample_id"]
        if sid in ids and (sid not in first or row["sample_index"] < first[sid]["sample_index"]):
            first[sid] = row
    return first


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders "item-2" before "item-10"."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text) if p)
