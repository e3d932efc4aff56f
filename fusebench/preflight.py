"""Checks an eval makes before its first generation: every requested benchmark's scorer, preparer, target
transform, judge files and data resolve, so a typo in a spec costs seconds, not a suite's generations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fusebench import preparer_registry, scorers
from fusebench.errors import UsageError
from fusebench.judging import modes
from fusebench.spec import BenchmarkSpec, spec_location
from fusebench.targets import TRANSFORMS

if TYPE_CHECKING:
    from fusebench.plan import PlannedBenchmark


def preparer_names() -> set[str]:
    """Every row preparer name (built-in or from an entry point), importing none."""
    return preparer_registry.known_names()


def spec_problem(spec: BenchmarkSpec) -> str | None:
    """The first name a spec refers to that nothing provides (its scorer or judge mode, preparer, target transform),
    as one line naming the file and line; None when all resolve. Loads no scorer, no judge mode and no data."""
    if spec.judge is not None and not modes.is_known(spec.judge.mode):
        known = ", ".join(sorted(modes.known_names()))
        return f"bad spec {spec_location(spec.id, 'judge')}: unknown judge mode {spec.judge.mode!r}; known: {known}"
    if spec.judge is None and not scorers.is_known(spec.scorer):
        known = ", ".join(sorted(scorers.known_names()))
        return f"bad spec {spec_location(spec.id, 'scorer')}: unknown scorer {spec.scorer!r}; known: {known}"
    if spec.data.prepare and spec.data.prepare not in preparer_names():
        known = ", ".join(sorted(preparer_names()))
        return f"bad spec {spec_location(spec.id, 'data')}: unknown data.prepare {spec.data.prepare!r}; known: {known}"
    if spec.data.target_transform not in TRANSFORMS:
        known = ", ".join(sorted(TRANSFORMS))
        return (
            f"bad spec {spec_location(spec.id, 'data')}: unknown data.target_transform "
            f"{spec.data.target_transform!r}; known: {known}"
        )
    return None


def check_specs(specs: Sequence[BenchmarkSpec]) -> None:
    """Raise UsageError on the first spec whose scorer, preparer or target transform does not resolve."""
    for spec in specs:
        problem = spec_problem(spec)
        if problem:
            raise UsageError(problem)


def check_planned(planned: Sequence[PlannedBenchmark]) -> None:
    """Resolve what scoring and judging will need for every planned benchmark, once its data is loaded: its scorer's
    module (a missing dependency shows now), and the judge's prompt, baseline and reference files for every item."""
    from fusebench.scorers.base import get_scorer

    for p in planned:
        if p.spec.judge is None:
            get_scorer(p.spec.scorer)
        else:
            from fusebench.judging.stage import build_tasks

            placeholder = [""] * p.spec.turns
            build_tasks(p.spec, p.data.items, {item.id: placeholder for item in p.data.items})
