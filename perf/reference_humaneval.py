"""HumanEval before and after EvalPlus's chat prompt, prefill and stops (spec v1 vs v2), same model and items.

Before: fusebench's old prompt (```python fence, no prefill, no stop, 1,024 new tokens), the answer's code block
scored. After: the humaneval spec (EvalPlus prompt, response prefix prefilled, FuseEval's stops, 2,048 new tokens),
scored sanitized (the headline) and raw. Prints per side: wall time, mean completion tokens, answers at the token
cap, pass@1 with its 95% CI; writes every answer to --out (JSON) for agreement checks; finishes with
  ratio: wall time before / wall time after

    OMP_NUM_THREADS=1 python perf/reference_humaneval.py --model qwen2.5-coder-0.5b-instruct-gguf --items 16
    .venv-vllm/bin/python perf/reference_humaneval.py --model qwen2.5-coder-0.5b-instruct-gguf --items 164 \
        --backend vllm --dtype bfloat16 --batch-size 164
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from fusebench.backends import BackendOptions, make_backend
from fusebench.backends.base import GenParams
from fusebench.data import load_items
from fusebench.prompts import build_conversation
from fusebench.scorers.base import ScoreInput, get_scorer
from fusebench.scorers.sanitize import answer_text
from fusebench.spec import PromptSpec, get_benchmark
from fusebench.stats import mean_ci

OLD_USER = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
    "\n```python\n{input}\n```"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--items", type=int, default=16, help="the N longest HumanEval prompts")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--backend", default="hf", choices=("hf", "vllm"), help="vllm: run in .venv-vllm")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--out", default="humaneval_reference.json")
    parser.add_argument("--sides", default="before,after", help="which setups to run (outputs are kept per side)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    spec = get_benchmark("humaneval")
    items = sorted(load_items(spec).items, key=lambda i: len(i.input), reverse=True)[: args.items]
    options = BackendOptions(batch_size=args.batch_size, dtype=args.dtype, enforce_eager=True)
    backend = make_backend(args.backend, args.model, options)
    list(backend.generate([[{"role": "user", "content": "Hi"}]], GenParams(max_new_tokens=1)))  # load outside timing
    scorer = get_scorer("humaneval")
    sides: dict[str, Any] = {}
    old = replace(spec, prompt=PromptSpec(user=OLD_USER), answer="completion")
    setups = {
        "before": (old.prompt, GenParams(max_new_tokens=1024), {"code block": old}),
        "after": (
            spec.prompt,
            GenParams(max_new_tokens=spec.generation["max_new_tokens"], stop=tuple(spec.generation["stop"])),
            {"sanitized": spec, "raw": get_benchmark("humaneval_raw")},
        ),
    }
    for side in args.sides.split(","):
        prompt, params, _ = setups[side]
        convs = [build_conversation(prompt, item) for item in items]
        started = time.perf_counter()
        done = {c.index: c for c in backend.generate(convs, params)}
        wall = time.perf_counter() - started
        tokens = [done[i].completion_tokens for i in range(len(items))]
        capped = sum(done[i].finish_reason == "length" for i in range(len(items)))
        print(f"{side}: wall {wall:.1f} s, mean completion tokens {sum(tokens) / len(tokens):.1f}, at cap {capped}")
        outputs = [{"id": it.id, "text": done[i].text} for i, it in enumerate(items)]
        sides[side] = {"wall_s": wall, "tokens": tokens, "capped": capped, "outputs": outputs, "scores": {}}
        with open(args.out, "w") as f:  # kept before scoring: a scoring failure loses no generation
            json.dump(sides, f, indent=1)
    for side, record in sides.items():
        for name, scoring_spec in setups[side][2].items():
            texts = [o["text"] for o in record["outputs"]]
            values = [
                scorer(ScoreInput(answer_text(scoring_spec, it.row, text), it.target, it.row)).value
                for it, text in zip(items, texts, strict=True)
            ]
            ci = mean_ci(values)
            record["scores"][name] = values
            print(f"{side} {name}: pass@1 {100 * ci.estimate:.1f} [{100 * ci.low:.1f}, {100 * ci.high:.1f}]")
    with open(args.out, "w") as f:
        json.dump(sides, f, indent=1)
    if {"before", "after"} <= sides.keys():
        print(f"ratio: {sides['before']['wall_s'] / sides['after']['wall_s']:.2f}")


if __name__ == "__main__":
    main()
