"""What a reused score depends on in code: the source of the scorer that computed it (score cache keys)."""

from __future__ import annotations

import hashlib
import sys
from functools import cache
from pathlib import Path

from fusebench.scorers.base import FunctionScorer, Scorer

_PACKAGE = Path(__file__).resolve().parent.parent  # fusebench/
_BUILTIN_SOURCES = ("scorers", "sandbox")  # a built-in scorer runs code from these folders only


@cache
def _files_hash(files: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def scorer_code(scorer: Scorer) -> str | None:
    """A hash of the source `scorer` runs: fusebench's scorers and sandbox folders for a built-in, the defining
    module (its package's folder for a package) for a third-party one; None when the source cannot be read (then its
    scores are not reused)."""
    defined_by = scorer.score if isinstance(scorer, FunctionScorer) else type(scorer)
    module = getattr(defined_by, "__module__", None) or ""
    if module == "fusebench" or module.startswith("fusebench."):
        files = tuple(f for folder in _BUILTIN_SOURCES for f in sorted((_PACKAGE / folder).glob("*.py")))
        return "fusebench:" + _files_hash(files)
    origin = getattr(sys.modules.get(module), "__file__", None)
    if not origin:
        return None
    path = Path(origin)
    files = tuple(sorted(path.parent.glob("*.py"))) if path.name == "__init__.py" else (path,)
    return f"{module}:{_files_hash(files)}"
