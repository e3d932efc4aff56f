"""vLLM pins its own torch, so on CPU it lives in its own venv (`.venv-vllm`, scripts/install-vllm.sh). A stage that
runs on vLLM from fusebench's venv runs a module of this package in that venv's Python, with its input as JSON on
stdin; the child reports a bad input as one line and exit 2."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from fusebench.errors import UsageError


def vllm_venv() -> Path | None:
    """The `.venv-vllm` that scripts/install-vllm.sh builds (beside fusebench's checkout, or in the current
    directory), when there is one and it is not the interpreter already running."""
    here = Path(sys.prefix).resolve()
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        venv = root / ".venv-vllm"
        if (venv / "bin" / "python").is_file() and venv.resolve() != here:
            return venv
    return None


def choose_backend(configured: str) -> str:
    """A stage's backend: the configured one, or for "auto" vLLM when it is importable in this interpreter,
    "vllm-venv" when a `.venv-vllm` exists (the stage then runs in that venv's Python), else "hf"."""
    if configured != "auto":
        return configured
    if importlib.util.find_spec("vllm") is not None:
        return "vllm"
    return "vllm-venv" if vllm_venv() is not None else "hf"


def run_in_venv(venv: Path, module: str, payload: dict[str, Any], what: str) -> None:
    """Run `python -m module` in `venv` with `payload` on stdin; its output goes to ours."""
    cmd = [str(venv / "bin" / "python"), "-m", module]
    done = subprocess.run(cmd, input=json.dumps(payload), text=True, check=False)
    if done.returncode != 0:
        raise UsageError(f"{what} with vLLM in {venv} failed (exit {done.returncode}); see the lines above")
