"""Regression tracking: run tags, a family's scores across checkpoints, and the `gate` check."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fusebench.compare import ALPHA, BenchmarkRow, Comparison, RunData, RunInfo, compare, mismatch_flags, resolve_run
from fusebench.errors import UsageError
from fusebench.keys import stable_hash
from fusebench.scale import Scale
from fusebench.spec import CATEGORIES
from fusebench.store import Store, scale_of_result


def set_tags(store: Store, ref: str, tags: dict[str, str], remove: Sequence[str] = ()) -> dict[str, str]:
    """Add (or overwrite) and remove tags of a stored run; returns the run's new tags."""
    run = resolve_run(store, ref)
    new = {k: v for k, v in {**(run["tags"] or {}), **tags}.items() if k not in remove}
    store.set_tags(run["id"], new)
    return new


def step_key(step: str | None) -> tuple[float, str]:
    """Numeric steps in numeric order; other or missing steps after them, by text."""
    if step is not None and step.isdigit():
        return float(step), ""
    return math.inf, step or ""


@dataclass(frozen=True)
class History:
    """One family's benchmarks across checkpoints: per step one run, the one whose settings match the family's (or
    the one named). flags: setting differences between the chosen runs, as `compare` words them (first step = base);
    notes: per step, the other complete runs passed over and why."""

    family: str
    steps: tuple[str, ...]
    run_ids: tuple[str, ...]
    rows: tuple[tuple[str, str, tuple[float | None, ...]], ...]  # (category, benchmark, score per step)
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    scales: dict[str, Scale] = field(default_factory=dict)  # benchmark -> its scale (the first step having it)


@dataclass(frozen=True)
class _Candidate:
    """A complete run of the family with its per-benchmark results and their settings signatures."""

    run: dict[str, Any]
    step: str
    order: int  # position in the store's run list: higher = newer
    results: dict[str, dict[str, Any]]

    def signature(self, bench: str) -> str:
        """What must match for two runs' scores on `bench` to be like with like (compare's mismatch checks)."""
        r = self.results[bench]
        judge = (r.get("details") or {}).get("judge")
        return stable_hash([r["version"], r["metric"], r["generation"], judge, r["n"], r["data_checksum"], r["scale"]])


def _candidates(store: Store, family: str) -> list[_Candidate]:
    out = []
    for order, run in enumerate(store.list_runs()):  # oldest first
        tags = run["tags"] or {}
        if run["status"] == "complete" and tags.get("family") == family:
            results = {r["benchmark"]: r for r in store.get_benchmark_results(run["id"])}
            out.append(_Candidate(run, tags.get("step", run["id"]), order, results))
    if not out:
        raise UsageError(f"no complete run is tagged family={family} (tag runs with `fusebench eval --tag`)")
    return out


def _family_settings(candidates: Sequence[_Candidate], named: Sequence[_Candidate]) -> dict[str, str]:
    """Per benchmark, the family's settings signature: that of the named runs (the first naming it), else the most
    common one among the family's runs (ties: the newest run's)."""
    reference: dict[str, str] = {}
    for c in named:
        for bench in c.results:
            reference.setdefault(bench, c.signature(bench))
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    newest: dict[tuple[str, str], int] = {}
    for c in candidates:
        for bench in c.results:
            sig = c.signature(bench)
            votes[bench][sig] += 1
            newest[bench, sig] = max(newest.get((bench, sig), -1), c.order)
    for bench, counts in votes.items():
        if bench not in reference:
            reference[bench] = max(counts, key=lambda sig: (counts[sig], newest[bench, sig]))
    return reference


def _differing(c: _Candidate, reference: dict[str, str]) -> list[str]:
    return sorted(b for b in c.results if c.signature(b) != reference[b])


def _choose(runs_: Sequence[_Candidate], reference: dict[str, str]) -> _Candidate:
    """The run of a step that differs from the family's settings on the fewest benchmarks, then covers the most of
    them, then is the newest."""
    return max(runs_, key=lambda c: (-len(_differing(c, reference)), len(c.results), c.order))


def _passed_over(pick: _Candidate, others: Sequence[_Candidate], named: bool, reference: dict[str, str]) -> str:
    """One note line: which run a step shows and why the others of the step are not shown."""
    reasons = []
    for c in sorted(others, key=lambda c: -c.order):
        age = "newer" if c.order > pick.order else "older"
        differing = _differing(c, reference)
        if named:
            why = f"{age}, not named"
        elif differing:
            why = f"{age}; settings differ from the family's on {', '.join(differing)}"
        else:
            why = f"{age}" if c.order < pick.order else "covers fewer benchmarks"
        reasons.append(f"{c.run['id']} ({why})")
    shown = "named" if named else "closest to the family's settings"
    return f"step {pick.step}: shows run {pick.run['id']} ({shown}); passed over {', '.join(reasons)}"


def family_runs(store: Store, family: str, named: Sequence[str] = ()) -> tuple[list[dict[str, Any]], list[str]]:
    """Per step of the family (sorted by step) the run to show, and notes on the complete runs passed over.

    A named run (id prefix or model name) is taken for its step and sets the family's settings; other steps take
    the run whose settings match the family's (see `_family_settings` and `_choose`)."""
    candidates = _candidates(store, family)
    by_id = {c.run["id"]: c for c in candidates}
    all_runs = store.list_runs()
    chosen: dict[str, _Candidate] = {}
    for ref in named:
        run = resolve_run(store, ref, all_runs)
        if run["id"] not in by_id:
            raise UsageError(f"run {run['id']} is not a complete run tagged family={family}")
        c = by_id[run["id"]]
        if c.step in chosen:
            raise UsageError(f"runs {chosen[c.step].run['id']} and {c.run['id']} are both step {c.step}: name one")
        chosen[c.step] = c
    reference = _family_settings(candidates, list(chosen.values()))
    steps: dict[str, list[_Candidate]] = defaultdict(list)
    for c in candidates:
        steps[c.step].append(c)
    picked, notes = [], []
    for step in sorted(steps, key=step_key):
        pick = chosen.get(step) or _choose(steps[step], reference)
        others = [c for c in steps[step] if c is not pick]
        if others:
            notes.append(_passed_over(pick, others, step in chosen, reference))
        picked.append(pick.run)
    return picked, notes


def history(store: Store, family: str, benchmarks: Sequence[str] | None = None, named: Sequence[str] = ()) -> History:
    """Every benchmark of a family's runs across checkpoints, like with like (see `family_runs`)."""
    fam, notes = family_runs(store, family, named)
    results = [{r["benchmark"]: r for r in store.get_benchmark_results(run["id"])} for run in fam]
    names = {b for res in results for b in res if benchmarks is None or b in benchmarks}
    if benchmarks is not None and set(benchmarks) - names:
        raise UsageError(f"family {family} has no benchmark(s): {', '.join(sorted(set(benchmarks) - names))}")
    category = {b: res[b]["category"] for res in results for b in res if b in names}
    scales = {b: scale_of_result(res[b]) for res in reversed(results) for b in res if b in names}
    order = {c: i for i, c in enumerate(CATEGORIES)}
    rows = tuple(
        (category[b], b, tuple(None if b not in res or res[b]["score"] is None else res[b]["score"] for res in results))
        for b in sorted(names, key=lambda b: (order.get(category[b], len(order)), b))
    )
    steps = tuple((run["tags"] or {}).get("step", run["id"]) for run in fam)
    shown = [
        RunData(
            _step_info(run, step),
            {b: r for b, r in res.items() if b in names},
            store.item_means(run["id"], names),  # item sets, for compare's "item sets differ" note
        )
        for run, step, res in zip(fam, steps, results, strict=True)
    ]
    flags = tuple(flag for other in shown[1:] for flag in mismatch_flags(shown[0], other))
    return History(family, steps, tuple(r["id"] for r in fam), rows, flags, tuple(notes), scales)


def _step_info(run: dict[str, Any], step: str) -> RunInfo:
    tags = dict(run["tags"] or {})
    return RunInfo(run["id"], run["model"], f"step {step} ({run['id']})", run["status"], tags, run["started_at"])


@dataclass(frozen=True)
class GateFailure:
    """A benchmark that blocks the candidate."""

    benchmark: str
    reason: str
    row: BenchmarkRow


@dataclass(frozen=True)
class GateResult:
    """The outcome of `gate`: the comparison (baseline first) and the failures."""

    comparison: Comparison
    max_drop: float
    failures: tuple[GateFailure, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def gate(
    store: Store,
    candidate: str,
    baseline: str,
    max_drop: float = 1.0,
    benchmarks: Sequence[str] | None = None,
    alpha: float = ALPHA,
) -> GateResult:
    """Fail on each benchmark whose delta is below -max_drop points with Holm-adjusted p < alpha.

    Points are normalised by each benchmark's stored scale (a 1-10 rating's delta counts x10) and a drop follows its
    direction. A benchmark of the baseline that the candidate lacks, or that shares no items with it, fails too: the
    gate cannot vouch for it.
    """
    if not (max_drop >= 0 and math.isfinite(max_drop)):
        raise UsageError(f"--max-drop must be a finite number >= 0, got {max_drop}")
    comparison = compare(store, [baseline, candidate], benchmarks, alpha)
    failures = []
    for row in comparison.rows:
        base_score, delta = row.scores[0], row.deltas[0]
        if base_score is None:
            continue
        if row.scores[1] is None:
            failures.append(GateFailure(row.benchmark, "missing in the candidate", row))
        elif delta is None:
            failures.append(GateFailure(row.benchmark, "no items shared with the baseline", row))
        else:
            worse = -delta.delta.estimate if row.scale.higher_is_better else delta.delta.estimate
            drop = worse * row.normaliser
            if drop > max_drop and delta.p_holm < alpha:
                failures.append(
                    GateFailure(row.benchmark, f"dropped {drop:.2f} points (Holm p {delta.p_holm:.3g})", row)
                )
    if not any(row.scores[0] is not None for row in comparison.rows):
        raise UsageError("the baseline has none of the gated benchmarks")
    return GateResult(comparison, max_drop, tuple(failures))
