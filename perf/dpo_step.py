"""DPO step time with precomputed reference log-probs (fusebench_train's default) vs TRL's default, where the
reference model runs a forward pass on every step. Same model, same pairs, same process.

Pairs: bundled GSM8K train prompts; chosen = the reference solution, rejected = the same with a wrong final
answer. Model: the bundled SmolLM2-135M-Instruct (or --model). Prints one line per figure and `ratio: X`
(default step time / precomputed step time; higher = the precomputed path is faster).

    python perf/dpo_step.py [--pairs 16] [--steps 6] [--model PATH] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from fusebench_train.trl_config import TrainStage, trl_args

DATA = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "fuse" / "gsm8k_train_200.jsonl"


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._t0 = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._t0 = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.times.append(time.perf_counter() - self._t0)


def pairs(n: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()[:n]]
    out = []
    for row in rows:
        solution, final = row["answer"].rsplit("####", 1)
        wrong = str(int(final.strip().replace(",", "")) + 1) if final.strip().replace(",", "").isdigit() else "0"
        out.append(
            {
                "prompt": [{"role": "user", "content": row["question"]}],
                "chosen": [{"role": "assistant", "content": f"{solution}#### {final.strip()}"}],
                "rejected": [{"role": "assistant", "content": f"{solution}#### {wrong}"}],
            }
        )
    return out


def run(model_path: str, rows: list[dict[str, Any]], steps: int, precompute: bool, work: Path) -> tuple[float, float]:
    """(median step seconds after the first step, seconds spent before training: model copy or precompute)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    folder = work / ("pre" if precompute else "default")
    data = Dataset.from_list(rows)
    data.save_to_disk(str(folder / "data"))  # a saved dataset, as the pipeline's (the precompute cache lives there)
    from datasets import load_from_disk

    t = TrainStage(
        "dpo",
        {
            "max_steps": steps,
            "per_device_train_batch_size": 2,
            "gradient_accumulation_steps": 1,
            "max_length": 512,
            "save_steps": 10_000,
            "logging_steps": 10_000,
            "learning_rate": 1e-6,
            "precompute_ref_log_probs": precompute,
        },
    )
    args = trl_args("dpo", t.trl_kwargs(folder / "out", seed=0))
    args.save_strategy = "no"
    timer = StepTimer()
    start = time.perf_counter()
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=load_from_disk(str(folder / "data")),
        processing_class=tokenizer,
        callbacks=[timer],
    )
    setup = time.perf_counter() - start
    trainer.train()
    return statistics.median(timer.times[1:]), setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--model", help="checkpoint folder (default: the bundled SmolLM2-135M-Instruct)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.model:
        model_path = args.model
    else:
        from fusebench.models import load_source, resolve_model

        model_path, _ = load_source(resolve_model(None))
    rows = pairs(args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        default_step, default_setup = run(model_path, rows, args.steps, precompute=False, work=Path(tmp))
        pre_step, pre_setup = run(model_path, rows, args.steps, precompute=True, work=Path(tmp))
    print(f"pairs: {len(rows)}, steps: {args.steps}, batch: 2 pairs")
    print(f"trl default (reference forward every step): {default_step:.3f} s/step, setup {default_setup:.1f} s")
    print(f"precomputed reference log-probs: {pre_step:.3f} s/step, setup incl. precompute {pre_setup:.1f} s")
    print(f"ratio: {default_step / pre_step:.2f}")


if __name__ == "__main__":
    main()
