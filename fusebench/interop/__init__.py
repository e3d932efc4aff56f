"""Interop with other eval tools: lm-eval import and engine, export of runs to W&B or MLflow."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Add `import lm-eval` and `export` to the CLI's subparsers."""
    from fusebench.interop import export, lm_eval_import

    lm_eval_import.register(sub)
    export.register(sub)
