"""Scorers, by name, in one lazy registry: a scorer's module is imported the first time its name is asked for, so a
command that scores nothing imports none of them (math-verify and sympy alone take most of a second). Packages add
scorers through the `fusebench.scorers` entry-point group: "module:function" (a default scorer: 0-100, mean CI,
serial) or "module:Class" / "module:object" (a fusebench.scorers.base.Scorer, which owns its scale, aggregation and
parallelism)."""

from __future__ import annotations

from fusebench.registry import LazyNames

ENTRY_POINT_GROUP = "fusebench.scorers"

# name -> the module whose import registers it (fusebench.scorers.base.register)
BUILTIN: dict[str, str] = {
    "math": "fusebench.scorers.math",
    "math_qwen25": "fusebench.scorers.qwen_math",
    "choice": "fusebench.scorers.choice",
    "choice_tiger_lab": "fusebench.scorers.choice",
    "humaneval": "fusebench.scorers.code",
    "mbpp": "fusebench.scorers.code",
    "mbpp_base": "fusebench.scorers.code",
    "mbpp_plus": "fusebench.scorers.code",
    "livebench": "fusebench.scorers.livebench",
    "livecodebench": "fusebench.scorers.livecodebench",
    "livecodebench_lenient": "fusebench.scorers.livecodebench",
}


NAMES = LazyNames(ENTRY_POINT_GROUP, BUILTIN)


def known_names() -> set[str]:
    """Every scorer name that can be loaded: the built-ins and the installed packages' entry points."""
    return NAMES.known()


def is_known(name: str) -> bool:
    """Whether `name` names a scorer, without importing any scorer."""
    return NAMES.is_known(name)


def load(name: str) -> object | None:
    """Import what provides `name`: a built-in's module (its import registers it: None), or an entry point's object
    (a function or Scorer, which the caller registers); None as well when the name is unknown. This module does not
    import fusebench.scorers.base, which calls it: the two form no cycle."""
    return NAMES.load(name)
