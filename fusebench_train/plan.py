"""The plan of a fusion run, without running a model: sizes per domain, sources, sampling layout, expected SFT/DPO
sizes and optimizer steps, overlap of the prompts with the held-out sets, and the commands to run it.

`fusebench fuse plan CONFIG` and `fusebench fuse-and-eval CONFIG --dry-run` print it. Prompt files that are not
here yet (a GPU recipe whose prompt sets live elsewhere) are reported, not an error.
"""

from __future__ import annotations

import math
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fusebench.errors import UsageError
from fusebench.spec import get_benchmark, get_suite
from fusebench_train.config import FuseConfig, PromptSet
from fusebench_train.disjoint import Overlap, benchmark_texts, overlaps, strip_template
from fusebench_train.venv import choose_backend


@dataclass(frozen=True)
class DomainPlan:
    """One domain's prompts and what sampling and selection can make of them (None: a prompt file is missing)."""

    domain: str
    prompts: int | None
    samples_per_prompt: int
    responses: int | None  # prompts x samples x sources
    sft_prompts: int | None  # at most one SFT example each (prompts where every response fails are dropped)
    dpo_prompts: int | None  # at most pairs_per_prompt pairs each


@dataclass(frozen=True)
class TrainPlan:
    """One training stage: its examples, batch and steps, and how it is launched."""

    stage: str
    max_examples: int | None
    processes: int
    effective_batch: int
    epochs: float
    max_steps: int | None  # optimizer steps at most (None: unknown size)
    command: str


@dataclass(frozen=True)
class Plan:
    config: str
    target: str
    sources: list[tuple[str, str, float]]
    sampling: str
    domains: list[DomainPlan]
    missing_files: list[str]
    validation: dict[str, int]
    train: list[TrainPlan]
    eval_models: list[str]
    eval_backend: str
    source_limit: int | None
    eval_benchmarks: list[tuple[str, int | None]]  # (benchmark, limit)
    overlaps: list[Overlap]  # training + validation prompts against each held-out set
    validation_in_training: int  # validation prompts that share content with training prompts
    commands: list[str]


def _rows(cfg: FuseConfig, spec: PromptSet) -> int | None:
    """Rows of the set's file (its `expected_rows` while the file is not here; None without either), capped at
    its limit."""
    path = cfg.resolve_path(spec.path)
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            n = sum(1 for line in fh if line.strip())
    elif spec.expected_rows is not None:
        n = spec.expected_rows
    else:
        return None
    return min(n, spec.limit) if spec.limit else n


def _domains(cfg: FuseConfig) -> list[DomainPlan]:
    counts: dict[str, int | None] = {}
    for spec in cfg.prompts:
        n = _rows(cfg, spec)
        prev = counts.get(spec.domain, 0)
        counts[spec.domain] = None if n is None or prev is None else prev + n
    out = []
    for domain, n in counts.items():
        k = cfg.sample.samples_per_prompt[domain]
        sft = None if n is None else round(cfg.build.sft_fraction.get(domain, 0.0) * n)
        out.append(
            DomainPlan(
                domain,
                n,
                k,
                None if n is None else n * k * len(cfg.sources),
                sft,
                None if n is None or sft is None else n - sft,
            )
        )
    return out


def _processes(accelerate_config: Path | None) -> int:
    if accelerate_config is None:
        return 1
    raw = yaml.safe_load(accelerate_config.read_text()) or {}
    return int(raw.get("num_processes", 1)) * int(raw.get("num_machines", 1))


def _train(cfg: FuseConfig, config_path: str, domains: list[DomainPlan]) -> list[TrainPlan]:
    known = all(d.sft_prompts is not None for d in domains)
    max_sft = sum(d.sft_prompts or 0 for d in domains) if known else None
    max_pairs = sum(d.dpo_prompts or 0 for d in domains) * cfg.build.pairs_per_prompt if known else None
    plans = []
    for stage, t, n in (("sft", cfg.sft, max_sft), ("dpo", cfg.dpo, max_pairs)):
        acc = cfg.resolve_path(t.accelerate_config) if t.accelerate_config else None
        processes = _processes(acc)
        batch = t.get("per_device_train_batch_size") * t.get("gradient_accumulation_steps") * processes
        epochs = float(t.get("num_train_epochs"))
        steps = None if n is None else math.ceil(n / batch) * math.ceil(epochs)
        if t.get("max_steps") > 0:
            steps = t.get("max_steps") if steps is None else min(steps, t.get("max_steps"))
        if acc is not None:
            command = f"accelerate launch --config_file {shlex.quote(str(t.accelerate_config))} -m fusebench.cli"
        else:
            command = "fusebench"
        plans.append(
            TrainPlan(
                stage,
                n,
                processes,
                batch,
                epochs,
                steps,
                f"{command} fuse {stage} {shlex.quote(config_path)}",
            )
        )
    return plans


def _eval_benchmarks(cfg: FuseConfig) -> list[tuple[str, int | None]]:
    e = cfg.eval
    if e.suite:
        entries = [(x.benchmark, x.limit) for x in get_suite(e.suite).entries]
    else:
        entries = [(b, None) for b in e.benchmarks or []]
    out = []
    for bench, suite_limit in entries:  # as fusebench eval applies them: the smaller of the suite's and the run's
        limits = [v for v in (suite_limit, e.limit) if v is not None]
        out.append((bench, min(limits) if limits else None))
    return out


def _texts(cfg: FuseConfig, sets: list[PromptSet]) -> dict[str, str]:
    from fusebench_train.prompts import load_prompt_sets

    out = {}
    for spec in sets:
        if cfg.resolve_path(spec.path).is_file():
            for p in load_prompt_sets(cfg, [spec]):
                out[f"{p.domain}:{p.id}"] = strip_template(p.messages[-1]["content"], spec.prompt_template)
    return out


def _overlaps(cfg: FuseConfig, benchmarks: list[tuple[str, int | None]]) -> tuple[list[Overlap], int]:
    train = _texts(cfg, cfg.prompts)
    val = _texts(cfg, cfg.validation)
    if not train:
        return [], 0
    held_out: dict[str, list[str]] = {}
    for bench, _ in benchmarks:
        spec = get_benchmark(bench)
        if spec.data.hub is not None or (spec.judge and spec.judge.data_dir_env):
            continue  # hub data (offline here) or a user-provided folder: listed as unchecked
        try:  # the whole set, not only the evaluated items: a copy of any item is a leak
            held_out[bench] = benchmark_texts(bench)
        except UsageError:
            continue
    found = overlaps({**train, **{f"val:{k}": v for k, v in val.items()}}, held_out)
    in_training = overlaps(val, {"training prompts": list(train.values())})[0].train_ids
    return found, len(in_training)


def _sampling(cfg: FuseConfig) -> str:
    s = cfg.sample
    return _backend_line(choose_backend(s.backend), s.data_parallel_size, s.tensor_parallel_size, "prompts") or (
        f"hf, batch size {s.batch_size or 'auto'}, dtype {s.dtype}, device {s.device}"
    )


def _eval_backend(cfg: FuseConfig) -> str:
    e = cfg.eval
    return _backend_line(choose_backend(e.backend), e.data_parallel_size, e.tensor_parallel_size, "items") or (
        f"hf, batch size {e.batch_size or 'auto'}, dtype {e.dtype}"
    )


def _backend_line(backend: str, data_parallel: int, tensor_parallel: int, sharded: str) -> str | None:
    """How a vLLM stage runs (None for HF)."""
    if not backend.startswith("vllm"):
        return None
    where = " (run in .venv-vllm)" if backend == "vllm-venv" else ""
    return (
        f"vllm{where}, data-parallel-size {data_parallel} x tensor-parallel-size {tensor_parallel} "
        f"(one engine per {tensor_parallel} GPU(s), {sharded} sharded)"
    )


def make_plan(cfg: FuseConfig, config_path: str) -> Plan:
    """Everything a run of `cfg` will do, from the config and the prompt files alone."""
    domains = _domains(cfg)
    sets = [*cfg.prompts, *cfg.validation]
    missing = [s.path for s in sets if not cfg.resolve_path(s.path).is_file()]
    validation: Counter[str] = Counter()
    for spec in cfg.validation:
        validation[spec.domain] += _rows(cfg, spec) or 0
    train = _train(cfg, config_path, domains)
    models = ["base", "sft", "fused", *(f"source:{s.name}" for s in cfg.sources if cfg.eval.evaluate_sources)]
    benchmarks = _eval_benchmarks(cfg)
    found, val_in_train = _overlaps(cfg, benchmarks)
    quoted = shlex.quote(config_path)
    commands = [f"fusebench fuse build {quoted}   # sample, score and build in one process"]
    commands += [t.command for t in train]
    commands.append(f"fusebench fuse-and-eval {quoted}   # eval (earlier stages are skipped) and the gains table")
    default = cfg.sample.temperature
    return Plan(
        config=config_path,
        target=cfg.target,
        sources=[(s.name, s.model, s.temperature if s.temperature is not None else default) for s in cfg.sources],
        sampling=_sampling(cfg),
        domains=domains,
        missing_files=missing,
        validation=dict(validation),
        train=train,
        eval_models=models,
        eval_backend=_eval_backend(cfg),
        source_limit=cfg.eval.source_limit if cfg.eval.evaluate_sources else None,
        eval_benchmarks=benchmarks,
        overlaps=found,
        validation_in_training=val_in_train,
        commands=commands,
    )


def _n(v: Any) -> str:
    return "?" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def format_plan(plan: Plan) -> str:
    """The plan as text: tables per domain and training stage, overlap checks, and the commands."""
    from tabulate import tabulate

    out = [f"plan of {plan.config}", f"target: {plan.target}", "sources:"]
    out += [f"  {name}: {model} (temperature {t})" for name, model, t in plan.sources]
    out.append(f"sampling: {plan.sampling}")
    rows = [
        [d.domain, _n(d.prompts), d.samples_per_prompt, _n(d.responses), _n(d.sft_prompts), _n(d.dpo_prompts)]
        for d in plan.domains
    ]
    headers = ["domain", "prompts", "samples/prompt/source", "responses", "SFT prompts", "DPO prompts"]
    out += ["", tabulate(rows, headers=headers, disable_numparse=True)]
    if plan.missing_files:
        out.append(f"prompt files not here yet (sizes: their expected_rows, else '?'): {', '.join(plan.missing_files)}")
    if plan.validation:
        sizes = ", ".join(f"{d} {n}" for d, n in plan.validation.items())
        out.append(
            f"validation (tuning) prompts: {sizes}; sharing content with training prompts: "
            f"{plan.validation_in_training}"
        )
    rows = [
        [t.stage, _n(t.max_examples), t.processes, t.effective_batch, t.epochs, _n(t.max_steps)] for t in plan.train
    ]
    headers = ["stage", "examples (at most)", "processes", "effective batch", "epochs", "optimizer steps (at most)"]
    out += ["", tabulate(rows, headers=headers, disable_numparse=True)]
    out.append("SFT: one example per SFT prompt with a usable response; DPO: pairs_per_prompt same-source pairs")
    bench = ", ".join(f"{b} ({'all' if lim is None else lim})" for b, lim in plan.eval_benchmarks)
    out += ["", f"eval ({plan.eval_backend}): {', '.join(plan.eval_models)} on {bench}"]
    if plan.source_limit is not None:
        out.append(f"  sources on the first {plan.source_limit} items of each (paired with fused on those items)")
    checked = {o.eval_set for o in plan.overlaps}
    for o in plan.overlaps:
        ids = f": {', '.join(o.train_ids[:5])}{' ...' if len(o.train_ids) > 5 else ''}" if o.train_ids else ""
        out.append(f"  overlap with {o.eval_set} ({o.eval_items} items, content hash): {len(o.train_ids)}{ids}")
    unchecked = [b for b, _ in plan.eval_benchmarks if b not in checked]
    if unchecked:
        why = "no prompt file here" if not plan.overlaps else "hub or user-provided data, not loaded for a plan"
        out.append(f"  not checked for overlap with training prompts ({why}): {', '.join(unchecked)}")
    out += ["", "commands:", *(f"  {c}" for c in plan.commands)]
    return "\n".join(out)
