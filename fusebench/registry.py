"""Names that a lazy registry can load without importing anything: the built-ins (name -> "module" whose import
registers the name, or "module:attr" naming the object) and an entry-point group through which installed packages
add their own. Scorers, judge modes and row preparers each keep one; nothing is imported before a name is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points


class LazyNames:
    """The loadable names of one registry: its built-ins and the installed packages' entry points in `group`."""

    def __init__(self, group: str, builtin: Mapping[str, str]) -> None:
        self.group = group
        self.builtin = dict(builtin)
        self._plugins: dict[str, EntryPoint] | None = None

    def plugins(self) -> dict[str, EntryPoint]:
        """The group's entry points by name, read once per process (`refresh` reads them again)."""
        if self._plugins is None:
            self._plugins = {ep.name: ep for ep in entry_points(group=self.group)}
        return self._plugins

    def refresh(self) -> None:
        """Forget the entry points read so far (a package was installed meanwhile)."""
        self._plugins = None

    def known(self) -> set[str]:
        """Every name that can be loaded."""
        return set(self.builtin) | set(self.plugins())

    def is_known(self, name: str) -> bool:
        """Whether `name` can be loaded, importing nothing."""
        return name in self.builtin or name in self.plugins()

    def load(self, name: str) -> object | None:
        """What provides `name`: a built-in "module:attr"'s object, an entry point's object, or None once a built-in
        "module" is imported (its import registers the name) or when the name is unknown."""
        if name in self.builtin:
            module, _, attr = self.builtin[name].partition(":")
            loaded = importlib.import_module(module)
            return getattr(loaded, attr) if attr else None
        if name in self.plugins():
            return self.plugins()[name].load()
        return None
