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
    from fusebench import scorers  # noqa: F401  (imports register the built-ins)

    if name not in _REGISTRY:
        raise KeyError(name)
    return _REGISTRY[name]


def scorer_names() -> list[str]:
    from fusebench import scorers  # noqa: F401

    return sorted(_REGISTRY)
