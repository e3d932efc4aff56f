"""Judge modes, by name, in one lazy registry: a mode's module is imported the first time its name is asked for.

Built-ins: pairwise (Arena-Hard), single (MT-Bench), alpaca_eval (AlpacaEval 2.0), alignbench (AlignBench). Packages
add modes through the `fusebench.judge_modes` entry-point group (name = "module:Class", a JudgeMode subclass or
instance); a spec names its mode in `judge.mode`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from fusebench.errors import UsageError
from fusebench.registry import LazyNames

if TYPE_CHECKING:
    from fusebench.judging.modes.base import JudgeMode

ENTRY_POINT_GROUP = "fusebench.judge_modes"

BUILTIN: dict[str, str] = {
    "pairwise": "fusebench.judging.modes.pairwise:Pairwise",
    "single": "fusebench.judging.modes.single:Single",
    "alpaca_eval": "fusebench.judging.modes.alpaca_eval:AlpacaEval",
    "alignbench": "fusebench.judging.modes.alignbench:AlignBench",
}


NAMES = LazyNames(ENTRY_POINT_GROUP, BUILTIN)


def known_names() -> set[str]:
    """Every judge mode that can be loaded: the built-ins and the installed packages' entry points."""
    return NAMES.known()


def is_known(name: str) -> bool:
    """Whether `name` names a judge mode, without importing any mode."""
    return NAMES.is_known(name)


@cache
def get_mode(name: str) -> JudgeMode:
    """The judge mode registered as `name` (UsageError when there is none)."""
    from fusebench.judging.modes.base import JudgeMode

    found = NAMES.load(name)
    if found is None:
        raise UsageError(f"unknown judge mode {name!r}; known: {', '.join(sorted(known_names()))}")
    mode = found() if isinstance(found, type) else found
    if not isinstance(mode, JudgeMode):
        raise UsageError(f"judge mode {name!r} is not a fusebench.judging.modes.base.JudgeMode: {mode!r}")
    return mode
