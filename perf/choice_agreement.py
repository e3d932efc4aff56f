"""TIGER-Lab's extraction chain (mmlu_pro's scorer) vs fusebench's lenient extraction, on real model outputs.

Generates answers to the first N MMLU-Pro items with the mmlu_pro spec's prompt and stop (greedy), then scores each
answer with both rules. Prints how often they extract the same letter and score the same, each accuracy, and the
outputs where they differ; finishes with
  ratio: share of answers scored the same by both rules

    OMP_NUM_THREADS=1 python perf/choice_agreement.py --items 50 --max-new-tokens 512
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from fusebench.backends.base import GenParams
from fusebench.backends.hf import HFBackend
from fusebench.data import load_items
from fusebench.models import resolve_model
from fusebench.prompts import build_conversation
from fusebench.scorers.base import ScoreInput, get_scorer
from fusebench.spec import get_benchmark


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--out", default="choice_agreement.json")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    spec = get_benchmark("mmlu_pro")
    items = load_items(spec, limit=args.items).items
    backend = HFBackend(resolve_model(args.model), batch_size=args.batch_size)
    params = GenParams(max_new_tokens=args.max_new_tokens, stop=tuple(spec.generation["stop"]))
    started = time.perf_counter()
    done = {c.index: c for c in backend.generate([build_conversation(spec.prompt, i) for i in items], params)}
    print(f"generated {len(items)} answers in {time.perf_counter() - started:.1f} s")
    reference, lenient = get_scorer("choice_tiger_lab"), get_scorer("choice")
    rows = []
    for i, item in enumerate(items):
        inp = ScoreInput(done[i].text, item.target, item.row)
        ref, len_ = reference(inp), lenient(inp)
        rows.append({"id": item.id, "text": done[i].text, "gold": item.target, "reference": ref.__dict__,
                     "lenient": len_.__dict__, "finish": done[i].finish_reason})  # fmt: skip
    n = len(rows)
    same_letter = sum(r["reference"]["extracted"] == r["lenient"]["extracted"] for r in rows)
    same_score = sum(r["reference"]["value"] == r["lenient"]["value"] for r in rows)
    print(f"same letter extracted: {same_letter}/{n}; same score: {same_score}/{n}")
    for rule in ("reference", "lenient"):
        acc = sum(r[rule]["value"] for r in rows) / n
        failed = sum(r[rule]["extracted"] is None for r in rows)
        print(f"{rule}: accuracy {100 * acc:.1f}%, nothing extracted {failed}/{n}")
    print(f"answers at the token cap: {sum(r['finish'] == 'length' for r in rows)}/{n}")
    for r in rows:
        if r["reference"]["extracted"] != r["lenient"]["extracted"]:
            tail = r["text"][-160:].replace("\n", " | ")
            letters = f"reference {r['reference']['extracted']}, lenient {r['lenient']['extracted']}"
            print(f"  {r['id']}: {letters}: ...{tail}")
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)
    print(f"ratio: {same_score / n:.2f}")


if __name__ == "__main__":
    main()
