"""`fusebench eval --engine lm-eval`: run tasks with lm-eval's Python API and store them like an import."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusebench.errors import UsageError
from fusebench.interop.lm_eval_import import ImportOutcome, import_files
from fusebench.store import Store

BOOTSTRAP_ITERS = 1000  # stderr of non-mean metrics only; mean metrics use lm-eval's closed form


@dataclass
class LmEvalRequest:
    """One lm-eval run: its model (lm-eval model type and args), tasks (names or YAML paths) and options."""

    lm: str
    model_args: dict[str, Any]
    tasks: list[str]
    model_name: str
    limit: int | None = None
    batch_size: int | None = None
    apply_chat_template: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)


def task_specs(tasks: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(task specs for lm-eval, folders to index, the entries that are names rather than files).

    An entry ending in .yaml/.yml is a task file (its folder is indexed too, for `include:`); any other entry
    is a registered task, group or tag name, which needs lm-eval's own task index (slow to build).
    """
    if not tasks:
        raise UsageError("--tasks names no lm-eval task")
    specs: list[str] = []
    folders: list[str] = []
    names: list[str] = []
    for entry in tasks:
        if entry.endswith((".yaml", ".yml")):
            path = Path(entry).expanduser()
            if not path.is_file():
                raise UsageError(f"lm-eval task file {entry} not found")
            specs.append(str(path.resolve()))
            folders.append(str(path.resolve().parent))
        else:
            specs.append(entry)
            names.append(entry)
    return specs, sorted(set(folders)), names


def evaluate(request: LmEvalRequest, store: Store) -> ImportOutcome:
    """Run lm-eval's simple_evaluate with per-sample logging and store the written files as a run."""
    try:
        import lm_eval
        from lm_eval.loggers import EvaluationTracker
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise UsageError("--engine lm-eval needs the lm-eval package: pip install lm-eval") from None

    specs, folders, names = task_specs(request.tasks)
    manager = TaskManager(include_path=folders or None, include_defaults=bool(names))
    unknown = [n for n in names if n not in manager.all_tasks]
    if unknown:
        raise UsageError(f"unknown lm-eval task(s): {', '.join(unknown)} (names, or paths to task .yaml files)")
    with tempfile.TemporaryDirectory(prefix="fusebench-lm-eval-") as tmp:
        tracker = EvaluationTracker(output_path=tmp)
        try:
            results = lm_eval.simple_evaluate(
                model=request.lm,
                model_args=request.model_args,
                tasks=specs,
                limit=request.limit,
                batch_size=request.batch_size or 1,
                log_samples=True,
                evaluation_tracker=tracker,
                task_manager=manager,
                apply_chat_template=request.apply_chat_template,
                bootstrap_iters=BOOTSTRAP_ITERS,
            )
        except ConnectionError as exc:  # includes the hub's offline-mode errors
            raise UsageError(f"lm-eval could not fetch a task's data or model (offline?): {exc}") from exc
        if results is None:
            raise UsageError("lm-eval returned no results (not the main process?)")
        samples = results.pop("samples", {})
        tracker.save_results_aggregated(results=results, samples=samples)
        for task in results.get("configs", {}):
            tracker.save_results_samples(task_name=task, samples=samples[task])
        (written,) = Path(tmp).glob("**/results_*.json")
        return import_files(
            store, written, model=request.model_name, tags=request.tags, fingerprint=request.fingerprint
        )


def has_chat_template(path: str, revision: str | None) -> bool:
    """Whether the model's tokenizer defines a chat template (fusebench evaluates chat models through it)."""
    from transformers import AutoTokenizer

    return bool(AutoTokenizer.from_pretrained(path, revision=revision).chat_template)


def run_lm_eval_engine(
    model: str | None,
    tasks: list[str],
    limit: int | None,
    store: Store,
    tags: dict[str, str],
    batch_size: int | None,
) -> str:
    """Evaluate a fusebench model spec (alias, path, hub id) on lm-eval tasks with lm-eval's "hf" model; the run id.

    The chat template is applied when the tokenizer has one, as fusebench's own evals do.
    """
    import torch

    from fusebench.models import load_source, resolve_model

    resolved = resolve_model(model)
    path, revision = load_source(resolved)
    args: dict[str, Any] = {"pretrained": path, "device": "cuda" if torch.cuda.is_available() else "cpu"}
    if revision:
        args["revision"] = revision
    request = LmEvalRequest(
        lm="hf",
        model_args=args,
        tasks=tasks,
        model_name=resolved.name,
        limit=limit,
        batch_size=batch_size,
        apply_chat_template=has_chat_template(path, revision),
        tags=tags,
        fingerprint={"weights": resolved.fingerprint, "revision": resolved.revision},
    )
    return evaluate(request, store).run_id
