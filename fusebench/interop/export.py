"""`fusebench export RUN --to mlflow|wandb`: a stored run's settings, per-benchmark metrics and results JSON.

Either package is optional; without it the command fails with one line (exit 2). Where results go is
each tool's own configuration (MLFLOW_TRACKING_URI, WANDB_MODE / wandb login, ...).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from fusebench.cli_common import add_store_args, open_store
from fusebench.errors import UsageError
from fusebench.report.export import export_run
from fusebench.store import RunSettings, Store

TARGETS = ("mlflow", "wandb")
_PIP = {"mlflow": "mlflow (or mlflow-skinny)", "wandb": "wandb"}


def _require(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise UsageError(f"exporting to {name} needs the {name} package: pip install {_PIP[name]}") from None


def run_params(run: dict[str, Any]) -> dict[str, str]:
    """The settings logged as parameters: identity, seed, limit and generation overrides of a run."""
    settings = RunSettings.from_json(run["settings"])
    params = {
        "fusebench_run_id": run["id"],
        "model": run["model"],
        "backend": run["backend"],
        "suite": run["suite"] or "",
        "benchmarks": " ".join(run["benchmarks"]),
        "seed": settings.seed,
        "limit": settings.limit,
        "generation": json.dumps(settings.generation or {}, sort_keys=True),
        "fusebench_version": (run["environment"] or {}).get("fusebench", ""),
    }
    return {k: "" if v is None else str(v) for k, v in params.items()}


def run_metrics(results: list[dict[str, Any]]) -> dict[str, float]:
    """`<benchmark>/score|ci_low|ci_high|n` for every benchmark result (names safe for MLflow and W&B)."""
    metrics = {}
    for r in results:
        name = re.sub(r"[^\w./:\- ]", "_", r["benchmark"])
        for key in ("score", "ci_low", "ci_high", "n"):
            if r[key] is not None:
                metrics[f"{name}/{key}"] = float(r[key])
    return metrics


def export_to(store: Store, ref: str, target: str, output_dir: Path, project: str = "fusebench") -> str:
    """Log a stored run to MLflow (experiment `project`) or W&B (project `project`); returns where it went."""
    from fusebench.compare import resolve_run

    if target not in TARGETS:
        raise UsageError(f"unknown export target {target!r} (choose from {', '.join(TARGETS)})")
    module = _require(target)
    run = resolve_run(store, ref)
    results = store.get_benchmark_results(run["id"])
    results_json = export_run(store, run["id"], output_dir) / "results.json"
    try:
        if target == "mlflow":
            return _to_mlflow(module, run, results, results_json, project)
        return _to_wandb(module, run, results, results_json, project)
    except ImportError as exc:  # e.g. mlflow-skinny's default SQLite tracking store needs alembic
        package = (exc.name or "?").split(".")[0]
        hint = " (or set MLFLOW_TRACKING_URI to another store)" if target == "mlflow" else ""
        raise UsageError(f"{target} needs the module {package!r}: pip install {package}{hint}") from exc


def _to_mlflow(
    mlflow: Any, run: dict[str, Any], results: list[dict[str, Any]], results_json: Path, project: str
) -> str:
    mlflow.set_experiment(project)
    with mlflow.start_run(run_name=run["id"]) as active:
        mlflow.log_params(run_params(run))
        mlflow.set_tags({f"fusebench.{k}": v for k, v in (run["tags"] or {}).items()})
        mlflow.log_metrics(run_metrics(results))
        mlflow.log_artifact(str(results_json))
        return f"mlflow run {active.info.run_id} in experiment {project} ({mlflow.get_tracking_uri()})"


def _to_wandb(wandb: Any, run: dict[str, Any], results: list[dict[str, Any]], results_json: Path, project: str) -> str:
    tags = [f"{k}={v}" for k, v in sorted((run["tags"] or {}).items())]
    active = wandb.init(project=project, name=run["id"], config=run_params(run), tags=tags, job_type="eval")
    try:
        active.log(run_metrics(results))
        artifact = wandb.Artifact(f"fusebench-{run['id']}", type="eval-results")
        artifact.add_file(str(results_json))
        active.log_artifact(artifact)
        return f"wandb run {active.id} in project {project}"
    finally:
        active.finish()


def cmd_export(args: argparse.Namespace) -> int:
    """`fusebench export RUN --to mlflow|wandb [--project NAME]`."""
    print(export_to(open_store(args), args.run, args.to, args.output_dir, args.project))
    return 0


def register(sub: Any) -> None:
    """Add `export` to the CLI's subparsers."""
    p = sub.add_parser("export", help="log a stored run to MLflow or Weights & Biases (when installed)")
    p.add_argument("run", help="run id prefix or model name (latest complete run)")
    p.add_argument("--to", required=True, choices=TARGETS)
    p.add_argument("--project", default="fusebench", help="MLflow experiment / W&B project (default: %(default)s)")
    add_store_args(p)
    p.set_defaults(func=cmd_export)
