"""Score and the scorer registry: every scorer is a pure function of a stored sample."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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


Scorer = Callable[[ScoreInput], Score]
_REGISTRY: dict[str, Scorer] = {}


def register(name: str) -> Callable[[Scorer], Scorer]:
    """Decorator: register a scorer under a name that specs refer to."""

    def deco(fn: Scorer) -> Scorer:
        _REGISTRY[name] = fn
        return fn

    return deco


def get_scorer(name: str) -> Scorer:
    """The scorer registered as `name`, importing its module on first use (KeyError when there is none)."""
    if name not in _REGISTRY:
        from fusebench.scorers import load

        load(name)
    if name not in _REGISTRY:
        raise KeyError(name)
    return _REGISTRY[name]


def scorer_names() -> list[str]:
    """Every scorer name, loaded or not."""
    from fusebench.scorers import known_names

    return sorted(known_names() | set(_REGISTRY))
