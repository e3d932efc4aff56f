"""The eval stage on vLLM when vLLM lives in `.venv-vllm`: each model's `fusebench` run happens in that venv's
Python, into the same store, and the parent reads back the run id and results."""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusebench.backends import BackendOptions, make_backend
from fusebench.errors import UsageError
from fusebench.evaluate import EvalConfig, run_eval
from fusebench.store import Store
from fusebench_train.venv import run_in_venv


@dataclass(frozen=True)
class VenvOutcome:
    """What the eval stage reads of a run made in the other venv."""

    run_id: str
    results: list[dict[str, Any]]


def eval_in_venv(venv: Path, config: EvalConfig, store_url: str, options: BackendOptions) -> VenvOutcome:
    """`run_eval(config)` with `config.backend` built from `options`, in `venv`'s Python, stored at `store_url`.
    A rerun resumes the stored run as `fusebench eval` does (same config hash)."""
    if config.judge is not None:
        raise UsageError("eval in .venv-vllm: judge options are not passed on; run judged suites with eval.backend hf")
    with tempfile.TemporaryDirectory(prefix="fusebench-eval-") as tmp:
        out = Path(tmp) / "outcome.json"
        payload = {
            "config": dataclasses.asdict(config),
            "options": dataclasses.asdict(options),
            "store": store_url,
            "out": str(out),
        }
        run_in_venv(venv, "fusebench_train.venv_eval", payload, f"evaluating {config.model}")
        got = json.loads(out.read_text(encoding="utf-8"))
    return VenvOutcome(got["run_id"], got["results"])


def _main() -> None:
    """Entry of `eval_in_venv`: the config, backend options, store URL and outcome file as JSON on stdin."""
    payload = json.loads(sys.stdin.read())
    config = EvalConfig(**payload["config"])
    options = BackendOptions(**payload["options"])
    try:
        outcome = run_eval(config, Store(payload["store"]), lambda: make_backend(config.backend, config.model, options))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    result = {"run_id": outcome.run_id, "results": outcome.results}
    Path(payload["out"]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    _main()
