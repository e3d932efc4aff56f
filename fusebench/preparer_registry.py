"""Row preparers, by name, in one lazy registry: a preparer's module is imported the first time its name is asked
for. A preparer is a benchmark-specific step between a dataset's raw rows and its items (filter, reshape, shuffle),
named by a spec's `data.prepare`. Packages add preparers through the `fusebench.preparers` entry-point group
(name = "module:function")."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fusebench.registry import LazyNames

if TYPE_CHECKING:
    from fusebench.spec import BenchmarkSpec

ENTRY_POINT_GROUP = "fusebench.preparers"

RowPreparer = Callable[[list[dict[str, Any]], "BenchmarkSpec"], list[dict[str, Any]]]

# name -> the module whose import registers it (with `register`)
BUILTIN: dict[str, str] = {
    "mmlu_redux": "fusebench.preparers",
    "gpqa": "fusebench.preparers",
    "livecodebench": "fusebench.preparers",
    "livebench": "fusebench.preparers",
}
_REGISTRY: dict[str, RowPreparer] = {}


def register(name: str) -> Callable[[RowPreparer], RowPreparer]:
    """Decorator: register a row preparer under the name that specs' `data.prepare` refers to."""

    def deco(fn: RowPreparer) -> RowPreparer:
        _REGISTRY[name] = fn
        return fn

    return deco


NAMES = LazyNames(ENTRY_POINT_GROUP, BUILTIN)


def known_names() -> set[str]:
    """Every preparer name that can be loaded (built-in, registered or from an entry point), importing none."""
    return NAMES.known() | set(_REGISTRY)


def get_preparer(name: str) -> RowPreparer:
    """The preparer registered as `name`, importing its module on first use (KeyError when there is none)."""
    if name not in _REGISTRY:
        provided = NAMES.load(name)
        if provided is not None:
            register(name)(provided)  # type: ignore[arg-type]
    if name not in _REGISTRY:
        raise KeyError(name)
    return _REGISTRY[name]
