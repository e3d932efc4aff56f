"""Scorers, registered by name. Importing this package registers the built-ins."""

from fusebench.scorers import choice, code, livebench, livecodebench, math  # noqa: F401
