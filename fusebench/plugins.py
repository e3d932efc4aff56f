"""Plugin discovery: packages add subcommands through the `fusebench.plugins` entry-point group.

An entry point names a function `register(subparsers)`; the harness never imports plugin code otherwise.
"""

from __future__ import annotations

import argparse
import logging
from importlib.metadata import entry_points

log = logging.getLogger(__name__)
GROUP = "fusebench.plugins"


def register_plugins(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Let every installed plugin add its subcommands; a broken plugin is reported, not fatal."""
    for ep in entry_points(group=GROUP):
        try:
            ep.load()(subparsers)
        except Exception as exc:  # a plugin's bug must not break the harness
            log.warning("plugin %s failed to load: %s", ep.name, exc)
