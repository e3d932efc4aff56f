"""The scorer protocol and the scorer registry.

A scorer owns what a benchmark's scoring does: per-sample scoring of a stored output (`score`), the corpus-level
aggregation of per-item means to an estimate with its 95% interval (`aggregate`), the scale its scores are on
(`scale`), whether it runs samples in parallel threads (`parallel`: code run in the sandbox) and which `Score.reason`s
count as extraction failures. A plain function registered with `@register("name")` becomes a `FunctionScorer` with
the defaults (0-1 proportion, mean with its CI, serial); keyword arguments of `register` or a registered object
change them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from fusebench.scale import PROPORTION, Scale

if TYPE_CHECKING:
    from fusebench.stats import Interval

FAILURE_REASONS = frozenset({"extraction_failed", "no answer found"})


@dataclass(frozen=True)
class ScoreInput:
    """What a scorer sees: the model output and the item's reference fields."""

    output: str
    target: Any
    item: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    value: float
    extracted: str | None = None
    reason: str = ""

    @property
    def reusable(self) -> bool:
        """Whether a later run may reuse this score for the same answer: not a time-limit verdict (the sandbox's
        "timeout: ..."), which depends on how loaded the machine was."""
        return "timeout" not in self.reason


ScoreFn = Callable[[ScoreInput], Score]
Rows = Mapping[str, Mapping[str, Any]]  # item id -> the item's row
Aggregate = Callable[[Mapping[str, float], Rows], "Interval"]


@runtime_checkable
class Scorer(Protocol):
    """A benchmark's scoring behaviour (see the module docstring)."""

    @property
    def scale(self) -> Scale:
        """The scale of its scores (PROPORTION: 0-1 per item, shown as 0-100 points)."""
        ...

    @property
    def parallel(self) -> bool:
        """Whether samples are scored in parallel threads (scoring that waits on subprocesses)."""
        ...

    @property
    def failure_reasons(self) -> frozenset[str]:
        """The `Score.reason`s counted as extraction failures."""
        ...

    def score(self, inp: ScoreInput) -> Score:
        """One sample's score (its value in the scale's units per item: 0-1 for a proportion)."""
        ...

    def aggregate(self, item_means: Mapping[str, float], rows: Rows) -> Interval:
        """The corpus-level estimate and its 95% interval, in per-item units, from each item's mean score."""
        ...


def mean_interval(item_means: Mapping[str, float], rows: Rows) -> Interval:
    """The default aggregation: the mean over items with its 95% CI (fusebench.stats.mean_ci)."""
    from fusebench.stats import mean_ci

    return mean_ci(list(item_means.values()))


@dataclass(frozen=True)
class FunctionScorer:
    """A scorer made of a per-sample function (`score` is that function itself) and the behaviour given to
    `register`."""

    score: ScoreFn
    scale: Scale = PROPORTION
    parallel: bool = False
    failure_reasons: frozenset[str] = FAILURE_REASONS
    aggregation: Aggregate = mean_interval

    def aggregate(self, item_means: Mapping[str, float], rows: Rows) -> Interval:
        return self.aggregation(item_means, rows)


def grouped_breakdown(
    item_means: Mapping[str, float], groups: Mapping[str, str], scale: Scale
) -> dict[str, dict[str, float]]:
    """Per-group item count and mean score in display points, e.g. MMLU-Pro's 14 categories."""
    members: dict[str, list[float]] = defaultdict(list)
    for item_id, value in item_means.items():
        members[groups[item_id]].append(value)
    return {g: {"n": len(v), "score": scale.points_per_unit * sum(v) / len(v)} for g, v in sorted(members.items())}


_REGISTRY: dict[str, Scorer] = {}
_T = TypeVar("_T")


def register(
    name: str,
    *,
    scale: Scale = PROPORTION,
    parallel: bool = False,
    aggregate: Aggregate = mean_interval,
    failure_reasons: frozenset[str] = FAILURE_REASONS,
) -> Callable[[_T], _T]:
    """Decorator: register a scorer under a name that specs refer to. A function becomes a `FunctionScorer` with the
    keyword behaviour; a `Scorer` object (or a class, instantiated without arguments) registers as it is."""

    def deco(obj: _T) -> _T:
        _REGISTRY[name] = as_scorer(obj, scale, parallel, aggregate, failure_reasons)
        return obj

    return deco


def as_scorer(
    obj: Any,
    scale: Scale = PROPORTION,
    parallel: bool = False,
    aggregate: Aggregate = mean_interval,
    failure_reasons: frozenset[str] = FAILURE_REASONS,
) -> Scorer:
    """`obj` as a Scorer: a Scorer object or class as it is, a function with the given behaviour."""
    if isinstance(obj, type):
        obj = obj()
    if isinstance(obj, Scorer):
        return obj
    if callable(obj):
        return FunctionScorer(obj, scale, parallel, failure_reasons, aggregate)
    raise TypeError(f"not a scorer: {obj!r}")


def lookup(name: str) -> Scorer:
    """The scorer registered as `name`, importing its module on first use (KeyError when there is none)."""
    if name not in _REGISTRY:
        from fusebench.scorers import load

        provided = load(name)
        if provided is not None:
            register(name)(provided)
    if name not in _REGISTRY:
        raise KeyError(name)
    return _REGISTRY[name]


def get_scorer(name: str) -> ScoreFn:
    """The per-sample scoring function of the scorer registered as `name` (KeyError when there is none)."""
    return lookup(name).score


def scorer_names() -> list[str]:
    """Every scorer name, loaded or not."""
    from fusebench.scorers import known_names

    return sorted(known_names() | set(_REGISTRY))
