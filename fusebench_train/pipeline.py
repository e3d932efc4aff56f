"""The fusion pipeline: sample -> score -> build -> sft -> dpo -> eval, each stage resumable and skippable.

Every stage writes one artifact under the work directory and records in manifest.json the hash of its
inputs (its config section plus the upstream artifacts' hashes) and of the artifact. A stage whose
inputs and artifact are unchanged is skipped; `force_from` reruns a stage and everything after it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fusebench.backends.base import Backend
from fusebench.errors import UsageError
from fusebench.keys import stable_hash
from fusebench_train.config import FuseConfig
from fusebench_train.manifest import Manifest, path_hash
from fusebench_train.prompts import TrainPrompt, load_prompts
from fusebench_train.sampling import MakeBackend, default_backend, keyed_journal
from fusebench_train.select import Scored

STAGES = ("sample", "score", "build", "sft", "dpo", "eval")
SAMPLE_JOURNAL = "journal.jsonl"  # in the sample stage's folder
ARTIFACTS = {
    "sample": "sample/samples",
    "score": "score/scored",
    "build": "build",
    "sft": "sft/final",
    "dpo": "dpo/final",
    "eval": "eval/gains.json",
}
UPSTREAM = {
    "sample": (),
    "score": ("sample",),
    "build": ("score",),
    "sft": ("build",),
    "dpo": ("sft", "build"),
    "eval": ("sft", "dpo"),
}


DISTRIBUTED = ("sft", "dpo")  # the stages that `accelerate launch` runs over several processes


def launch_rank() -> tuple[int, int]:
    """(rank, world size) of this process under torchrun / `accelerate launch` (0, 1 otherwise)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@dataclass
class Pipeline:
    """One fusion run over a work directory. Backends are injectable (tests); defaults are fusebench's HF backend."""

    cfg: FuseConfig
    make_source_backend: MakeBackend | None = None
    make_eval_backend: Callable[[str], Backend] | None = None
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True))

    def __post_init__(self) -> None:
        self.work = self.cfg.work_path
        self.work.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(self.work)
        self._prompts: list[TrainPrompt] | None = None

    # --- helpers -----------------------------------------------------------------------------------------
    @property
    def prompts(self) -> list[TrainPrompt]:
        if self._prompts is None:
            self._prompts = load_prompts(self.cfg)
        return self._prompts

    def artifact(self, stage: str) -> Path:
        return self.work / ARTIFACTS[stage]

    def stage_dir(self, stage: str) -> Path:
        return self.work / stage

    def _own_inputs(self, stage: str) -> Any:
        cfg = self.cfg
        if stage == "sample":
            files = {p.path: path_hash(cfg.resolve_path(p.path)) for p in cfg.prompts}
            return {
                "sources": [asdict(s) for s in cfg.sources],
                "prompts": [p.hashed() for p in cfg.prompts],
                "files": files,
                "sample": cfg.section("sample"),
                "seed": cfg.seed,
            }
        if stage == "score":
            return {"score": cfg.section("score"), "prompts": [p.hashed() for p in cfg.prompts]}
        if stage == "build":
            return {"build": cfg.section("build")}
        if stage == "sft":
            from fusebench.models import resolve_model

            return {"target": resolve_model(cfg.target).fingerprint, "sft": cfg.section("sft"), "seed": cfg.seed}
        if stage == "dpo":
            return {"dpo": cfg.section("dpo"), "seed": cfg.seed}
        return {
            "eval": cfg.section("eval"),
            "target": cfg.target,
            "sources": [asdict(s) for s in cfg.sources] if cfg.eval.evaluate_sources else [],
        }

    def inputs_hash(self, stage: str) -> str:
        upstream = {u: self.manifest.artifact_hash(u) for u in UPSTREAM[stage]}
        missing = [u for u, h in upstream.items() if h is None]
        if missing:
            raise UsageError(f"stage {stage} needs stage {missing[0]} to finish first")
        return stable_hash({"stage": stage, "own": self._own_inputs(stage), "upstream": upstream})

    # --- driver ------------------------------------------------------------------------------------------
    def run(self, until: str = "eval", force_from: str | None = None) -> dict[str, str]:
        """Run the stages up to `until`; returns each stage's outcome ("ran" | "skipped")."""
        for name in (until, force_from):
            if name is not None and name not in STAGES:
                raise UsageError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
        forced = STAGES.index(force_from) if force_from else len(STAGES)
        rank, world = launch_rank()
        main = rank == 0  # under `accelerate launch` only rank 0 cleans stage folders and writes the manifest
        outcome = {}
        for i, stage in enumerate(STAGES[: STAGES.index(until) + 1]):
            inputs = self.inputs_hash(stage)
            if i < forced and self.manifest.is_done(stage, inputs, self.artifact(stage)):
                self.log(f"[{stage}] up to date, skipped")
                outcome[stage] = "skipped"
                continue
            if world > 1 and stage not in DISTRIBUTED:
                raise UsageError(
                    f"stage {stage} runs in one process (this is rank {rank} of {world}): run "
                    f"`fusebench fuse {'build' if stage in ('sample', 'score', 'build') else stage} CONFIG` first"
                )
            resume = i < forced and self.manifest.can_resume(stage, inputs)
            kept = self._keep_journal(stage) if not resume and main else None
            if not resume and main:
                shutil.rmtree(self.stage_dir(stage), ignore_errors=True)
            self.stage_dir(stage).mkdir(parents=True, exist_ok=True)
            if kept is not None:
                kept.replace(self.stage_dir(stage) / SAMPLE_JOURNAL)
            if main:
                self.manifest.start(stage, inputs)
            self.log(f"[{stage}] {'resuming' if resume else 'running'}")
            try:
                info = getattr(self, f"_stage_{stage}")()
            except BaseException as exc:  # a kill -9 leaves "running"; anything else says what stopped it
                if main:
                    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                    self.manifest.fail(stage, f"{type(exc).__name__}: {exc}".splitlines()[0], status)
                raise
            if main:
                self.manifest.finish(stage, inputs, self.artifact(stage), info)
            outcome[stage] = "ran"
        return outcome

    def _keep_journal(self, stage: str) -> Path | None:
        """Moves the sample journal out of the stage folder (returns where) when the stage's inputs changed but each
        response carries its key: the stage then samples again only the responses whose key changed."""
        journal = self.stage_dir(stage) / SAMPLE_JOURNAL
        if stage != "sample" or not keyed_journal(journal):
            return None
        return journal.replace(self.work / f".{SAMPLE_JOURNAL}.kept")

    # --- stages ------------------------------------------------------------------------------------------
    def _stage_sample(self) -> dict[str, Any]:
        from datasets import Dataset

        from fusebench_train.sampling import sample, sample_in_venv
        from fusebench_train.venv import choose_backend, vllm_venv

        journal = self.stage_dir("sample") / SAMPLE_JOURNAL
        make = self.make_source_backend
        if make is None:
            backend = choose_backend(self.cfg.sample.backend)
            self.log(f"[sample] backend: {backend}")
            if backend == "vllm-venv":
                venv = vllm_venv()
                assert venv is not None
                sample_in_venv(self.cfg, venv, journal)
                make = _nothing_left
            else:
                make = default_backend(self.cfg, backend)
        rows = sample(self.cfg, self.prompts, journal, make)
        _save_dataset(Dataset.from_list(rows), self.artifact("sample"))
        return {"responses": len(rows)}

    def _stage_score(self) -> dict[str, Any]:
        from datasets import Dataset, load_from_disk

        from fusebench_train.sampling import score

        rows = [dict(r) for r in load_from_disk(str(self.artifact("sample")))]
        scored = score(self.cfg, self.prompts, rows)
        _save_dataset(Dataset.from_list([asdict(s) for s in scored]), self.artifact("score"))
        return {"scored": len(scored)}

    def _stage_build(self) -> dict[str, Any]:
        from datasets import Dataset, load_from_disk

        from fusebench_train.select import build, build_stats, format_stats

        scored = [Scored(**r) for r in load_from_disk(str(self.artifact("score")))]
        b = self.cfg.build
        result = build(scored, b.sft_fraction, b.reward_gap, b.pairs_per_prompt, b.seed)
        messages = {p.id: p.messages for p in self.prompts}
        out = self.artifact("build")
        if not result.sft:
            raise UsageError("build: no SFT example (no usable response on any SFT prompt); sample more")
        if not result.pairs:
            raise UsageError("build: no DPO pair (no source had both a good and a bad response); sample more")
        sft_rows = [{"prompt": messages[r.prompt_id], "completion": _reply(r.text)} for r in result.sft]
        dpo_rows = [
            {"prompt": messages[p.prompt_id], "chosen": _reply(p.chosen.text), "rejected": _reply(p.rejected.text)}
            for p in result.pairs
        ]
        _save_dataset(Dataset.from_list(sft_rows), out / "sft")
        _save_dataset(Dataset.from_list(dpo_rows), out / "dpo")
        _write_jsonl(out / "sft_selection.jsonl", [asdict(r) for r in result.sft])
        _write_jsonl(out / "dpo_pairs.jsonl", [{**asdict(p), "gap": p.gap} for p in result.pairs])
        stats = build_stats(result, scored, b.reward_gap)
        (out / "stats.json").write_text(json.dumps(stats, indent=2))
        print(format_stats(stats), flush=True)
        return {"sft_examples": len(result.sft), "dpo_pairs": len(result.pairs)}

    def _stage_sft(self) -> dict[str, Any]:
        from fusebench.models import load_source, resolve_model
        from fusebench_train.train import run_sft

        path, _ = load_source(resolve_model(self.cfg.target))
        final = run_sft(path, self.artifact("build") / "sft", self.stage_dir("sft"), self.cfg.trl_kwargs("sft"))
        return {"global_step": _global_step(final)}

    def _stage_dpo(self) -> dict[str, Any]:
        from fusebench_train.train import run_dpo

        final = run_dpo(
            str(self.artifact("sft")),
            self.artifact("build") / "dpo",
            self.stage_dir("dpo"),
            self.cfg.trl_kwargs("dpo"),
        )
        return {"global_step": _global_step(final)}

    def _stage_eval(self) -> dict[str, Any]:
        from fusebench.report.export import export_run
        from fusebench.report.html import write_report
        from fusebench_train.gains import GAINS_TEXT, EvalTarget, format_gains, gains

        cfg = self.cfg
        sft_steps = _global_step(self.artifact("sft"))
        targets = [  # steps count optimizer steps from the target, so `fusebench history` orders base, SFT, fused
            EvalTarget("base", cfg.target),
            EvalTarget("sft", str(self.artifact("sft")), sft_steps),
            EvalTarget("fused", str(self.artifact("dpo")), sft_steps + _global_step(self.artifact("dpo"))),
        ]
        if cfg.eval.evaluate_sources:
            targets += [EvalTarget(f"source:{s.name}", s.model) for s in cfg.sources]
        store = self.store()
        runs: dict[str, str] = {}
        benchmarks: list[str] = []
        for t in targets:
            self.log(f"[eval] {t.stage}: {t.model}")
            outcome = self._eval_one(store, t)
            runs[t.stage] = outcome.run_id
            benchmarks = benchmarks or [r["benchmark"] for r in outcome.results if r.get("score") is not None]
        table = gains(store, runs, benchmarks)
        text = format_gains(table)
        folder = self.stage_dir("eval")
        for run_id in dict.fromkeys(runs.values()):
            export_run(store, run_id, folder)  # eval/runs/<id>/: results and every sample
        (folder / GAINS_TEXT).write_text(text + "\n", encoding="utf-8")
        (folder / "runs" / runs["fused"] / GAINS_TEXT).write_text(text + "\n", encoding="utf-8")
        write_report(store, list(dict.fromkeys(runs.values())), folder / "report.html", benchmarks)
        self.artifact("eval").write_text(json.dumps(table, indent=2))
        print(text, flush=True)
        self.log(f"[eval] gains: {folder / GAINS_TEXT}; HTML report (fusebench report): {folder / 'report.html'}")
        return {"runs": runs}

    def validate(self) -> dict[str, Any]:
        """Base, SFT and fused on the validation prompts (for tuning; see fusebench_train.validation)."""
        from fusebench.models import resolve_model
        from fusebench_train.validation import format_validation, validate

        missing = [s for s in ("sft", "dpo") if self.manifest.artifact_hash(s) is None]
        if missing:
            raise UsageError(f"validate needs the {missing[0]} stage done: fusebench fuse dpo CONFIG")
        models = {
            "base": (self.cfg.target, str(resolve_model(self.cfg.target).fingerprint)),
            "sft": (str(self.artifact("sft")), str(self.manifest.artifact_hash("sft"))),
            "fused": (str(self.artifact("dpo")), str(self.manifest.artifact_hash("dpo"))),
        }

        def make(model: str) -> Backend:
            if self.make_eval_backend is not None:
                return self.make_eval_backend(model)
            from fusebench.backends import BackendOptions, make_backend

            return make_backend("hf", model, BackendOptions(batch_size=self.cfg.eval.batch_size))

        table = validate(self.cfg, models, self.work / "validation", make)
        print(format_validation(table), flush=True)
        return table

    def store(self) -> Any:
        from fusebench.store import Store, store_url

        return Store(store_url(self.cfg.eval.store, self.work))

    def _eval_one(self, store: Any, t: Any) -> Any:
        from fusebench.backends import BackendOptions, make_backend
        from fusebench.evaluate import EvalConfig, run_eval
        from fusebench_train.venv import choose_backend, vllm_venv
        from fusebench_train.venv_eval import eval_in_venv

        e = self.cfg.eval
        backend = choose_backend(e.backend)
        config = EvalConfig(
            model=t.model,
            backend="vllm" if backend == "vllm-venv" else backend,
            suite=e.suite,
            benchmarks=e.benchmarks,
            limit=_limit(e.limit, e.source_limit) if t.stage.startswith("source:") else e.limit,
            seed=e.seed,
            generation={"max_new_tokens": e.max_new_tokens} if e.max_new_tokens else {},
            tags=_tags(e.family, t),
            progress=os.environ.get("TQDM_DISABLE") != "1",  # as the other stages: bars unless disabled
        )
        options = BackendOptions(
            batch_size=e.batch_size,
            dtype=e.dtype,
            data_parallel_size=e.data_parallel_size,
            tensor_parallel_size=e.tensor_parallel_size,
        )
        if self.make_eval_backend is not None:
            return run_eval(config, store, lambda: self.make_eval_backend(t.model))  # type: ignore[misc]
        if backend == "vllm-venv":
            venv = vllm_venv()
            assert venv is not None
            return eval_in_venv(venv, config, store.url, options)
        return run_eval(config, store, lambda: make_backend(config.backend, t.model, options))


def _limit(*limits: int | None) -> int | None:
    given = [v for v in limits if v is not None]
    return min(given) if given else None


def _tags(family: str, t: Any) -> dict[str, str]:
    """Base, SFT and fused are steps of the family (`fusebench history FAMILY`); a source is not a checkpoint of
    the target, so it names the family under another key (one run per step: a source at step 0 would hide base)."""
    if t.stage.startswith("source:"):
        return {"source_of": family, "stage": t.stage}
    return {"family": family, "stage": t.stage, "step": str(t.step)}


def _nothing_left(source: Any) -> Backend:
    raise UsageError(f"sampling in .venv-vllm left responses of {source.name} missing")


def _reply(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _save_dataset(ds: Any, dest: Path) -> None:
    """save_to_disk into a temporary folder, then rename: a kill never leaves a half-written artifact."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _global_step(final: Path) -> int:
    state = final / "train_state.json"
    return int(json.loads(state.read_text())["global_step"]) if state.is_file() else 0
