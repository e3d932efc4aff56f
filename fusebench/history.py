"""Regression tracking: run tags, a family's scores across checkpoints, and the `gate` check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from fusebench.compare import ALPHA, RATING_BENCHMARKS, BenchmarkRow, Comparison, compare, resolve_run
from fusebench.errors import UsageError
from fusebench.spec import CATEGORIES
from fusebench.store import Store, runs


def set_tags(store: Store, ref: str, tags: dict[str, str], remove: Sequence[str] = ()) -> dict[str, str]:
    """Add (or overwrite) and remove tags of a stored run; returns the run's new tags."""
    run = resolve_run(store, ref)
    new = {k: v for k, v in {**(run["tags"] or {}), **tags}.items() if k not in remove}
    with store.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run["id"]).values(tags=new))
    return new


def step_key(step: str | None) -> tuple[float, str]:
    """Numeric steps in numeric order; other or missing steps after them, by text."""
    if step is not None and step.isdigit():
        return float(step), ""
    return math.inf, step or ""


@dataclass(frozen=True)
class History:
    """One family's benchmarks across checkpoints (one run per step: the latest complete one)."""

    family: str
    steps: tuple[str, ...]
    run_ids: tuple[str, ...]
    rows: tuple[tuple[str, str, tuple[float | None, ...]], ...]  # (category, benchmark, score per step)


def family_runs(store: Store, family: str) -> list[dict[str, Any]]:
    """Complete runs tagged family=FAMILY, one per step (the latest), sorted by step."""
    latest: dict[str, dict[str, Any]] = {}
    for run in store.list_runs():  # oldest first, so later runs replace earlier ones
        tags = run["tags"] or {}
        if run["status"] == "complete" and tags.get("family") == family:
            latest[tags.get("step", run["id"])] = run
    if not latest:
        raise UsageError(f"no complete run is tagged family={family} (tag runs with `fusebench eval --tag`)")
    return [latest[s] for s in sorted(latest, key=step_key)]


def history(store: Store, family: str, benchmarks: Sequence[str] | None = None) -> History:
    """Every benchmark of a family's runs across checkpoints."""
    fam = family_runs(store, family)
    results = [{r["benchmark"]: r for r in store.get_benchmark_results(run["id"])} for run in fam]
    names = {b for res in results for b in res if benchmarks is None or b in benchmarks}
    if benchmarks is not None and set(benchmarks) - names:
        raise UsageError(f"family {family} has no benchmark(s): {', '.join(sorted(set(benchmarks) - names))}")
    category = {b: res[b]["category"] for res in results for b in res if b in names}
    order = {c: i for i, c in enumerate(CATEGORIES)}
    rows = tuple(
        (category[b], b, tuple(None if b not in res or res[b]["score"] is None else res[b]["score"] for res in results))
        for b in sorted(names, key=lambda b: (order.get(category[b], len(order)), b))
    )
    steps = tuple((run["tags"] or {}).get("step", run["id"]) for run in fam)
    return History(family, steps, tuple(r["id"] for r in fam), rows)


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

    Points are normalised (a rating benchmark's delta counts x10). A benchmark of the baseline that the
    candidate lacks, or that shares no items with it, fails too: the gate cannot vouch for it.
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
            drop = -delta.delta.estimate * RATING_BENCHMARKS.get(row.benchmark, 1.0)
            if drop > max_drop and delta.p_holm < alpha:
                failures.append(
                    GateFailure(row.benchmark, f"dropped {drop:.2f} points (Holm p {delta.p_holm:.3g})", row)
                )
    if not any(row.scores[0] is not None for row in comparison.rows):
        raise UsageError("the baseline has none of the gated benchmarks")
    return GateResult(comparison, max_drop, tuple(failures))
