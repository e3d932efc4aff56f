"""Stages 4 and 5: SFT of the target, then DPO from the SFT checkpoint, both with TRL.

Each trainer saves checkpoints under `<stage dir>/checkpoints`; a rerun after a crash or kill -9 resumes
from the last complete checkpoint (Trainer's resume_from_checkpoint) and never resamples or rescores.
The final model goes to `<stage dir>/final` (written to a temporary folder first, then renamed); the
checkpoints are then deleted (a finished stage is skipped on rerun, and each checkpoint holds the weights
plus the optimizer state, about 3x the model's size).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from fusebench_train.trl_config import trl_args


def last_checkpoint(folder: Path) -> str | None:
    """The newest complete Trainer checkpoint in `folder`, if any; incomplete ones (a kill while saving: no
    trainer_state.json, which the Trainer writes last) are deleted. Logged, as training resumes from it."""
    if not folder.is_dir():
        return None
    complete: dict[int, Path] = {}
    for d in folder.glob("checkpoint-*"):
        step = d.name.removeprefix("checkpoint-")
        if d.is_dir() and step.isdigit():
            if (d / "trainer_state.json").is_file():
                complete[int(step)] = d
            else:
                shutil.rmtree(d, ignore_errors=True)
    if not complete:
        return None
    found = str(complete[max(complete)])
    print(f"resuming from {found}", file=sys.stderr, flush=True)
    return found


def _finish(trainer: Any, tokenizer: Any, stage_dir: Path) -> Path:
    final = stage_dir / "final"
    tmp = stage_dir / "final.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / "train_state.json").write_text(json.dumps({"global_step": trainer.state.global_step}))
    if trainer.args.process_index == 0:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        shutil.rmtree(stage_dir / "checkpoints", ignore_errors=True)  # the stage is done: nothing to resume
    trainer.accelerator.wait_for_everyone()  # other ranks return once `final` is in place
    return final


def _load(model_path: str, bf16: bool) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.bfloat16 if bf16 else torch.float32)
    return model, tokenizer


def run_sft(model_path: str, dataset_dir: Path, stage_dir: Path, options: dict[str, Any]) -> Path:
    """Fine-tune `model_path` on the prompt/completion dataset at `dataset_dir` with TRL's SFTConfig(**options)
    (FuseConfig.trl_kwargs); returns the final model folder."""
    from datasets import load_from_disk
    from trl import SFTTrainer

    args = trl_args("sft", options)  # before the model: DeepSpeed ZeRO-3 partitions it while loading
    model, tokenizer = _load(model_path, args.bf16)
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=load_from_disk(str(dataset_dir)), processing_class=tokenizer
    )
    trainer.train(resume_from_checkpoint=last_checkpoint(stage_dir / "checkpoints"))
    return _finish(trainer, tokenizer, stage_dir)


def run_dpo(model_path: str, dataset_dir: Path, stage_dir: Path, options: dict[str, Any]) -> Path:
    """DPO from `model_path` (the SFT model, also the reference) on the pairs at `dataset_dir`, with TRL's
    DPOConfig(**options)."""
    from datasets import load_from_disk
    from trl import DPOTrainer

    args = trl_args("dpo", options)
    model, tokenizer = _load(model_path, args.bf16)
    trainer = DPOTrainer(
        model=model, args=args, train_dataset=load_from_disk(str(dataset_dir)), processing_class=tokenizer
    )
    trainer.train(resume_from_checkpoint=last_checkpoint(stage_dir / "checkpoints"))
    return _finish(trainer, tokenizer, stage_dir)
