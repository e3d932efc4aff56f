"""The cost of per-row seeded sampling (hf_sampling.RowSeededSampler) against transformers' own sampler.

Same model, GSM8K prompts, temperature and top-p, in one process: transformers' `do_sample=True` after one
`torch.manual_seed` (the draws depend on the batch) vs the HF backend, whose rows draw from their own seeds (the
draws do not). Both use the backend's CPU decode path (in-place KV cache); runs alternate, best of --repeats.
Prints both times, and
  ratio: stock time / fusebench time (>= 1: per-row sampling costs nothing)

    OMP_NUM_THREADS=1 python perf/sampling_overhead.py --items 32 --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from fusebench.backends.base import GenParams
from fusebench.backends.hf import HFBackend
from fusebench.backends.hf_decode import preallocated_cache
from fusebench.evaluate import load_benchmark_items
from fusebench.models import resolve_model
from fusebench.prompts import build_conversation
from fusebench.spec import get_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    spec = get_benchmark("gsm8k")
    items = load_benchmark_items(spec, args.items).items
    convs = [build_conversation(spec.prompt, item) for item in items]
    backend = HFBackend(resolve_model(None), batch_size=args.items)
    params = GenParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=1)
    list(backend.generate(convs[:2], GenParams(max_new_tokens=4)))  # load the weights, warm up

    prompts = [backend.chat.encode(c) for c in convs]
    enc = backend.tokenizer.pad({"input_ids": prompts}, padding=True, padding_side="left", return_tensors="pt")
    capacity = enc["input_ids"].shape[1] + args.max_new_tokens

    def stock_run() -> int:
        with torch.inference_mode():
            torch.manual_seed(params.seed)
            out = backend.model.generate(
                **enc,
                max_new_tokens=params.max_new_tokens,
                do_sample=True,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=None,
                pad_token_id=backend.pad_id,
                eos_token_id=sorted(backend.eos_ids),
                past_key_values=preallocated_cache(backend.model.config, capacity),
            )
        return int((out[:, enc["input_ids"].shape[1] :] != backend.pad_id).sum())

    def our_run() -> int:
        return sum(c.completion_tokens for c in backend.generate(convs, params))

    times: dict[str, list[float]] = {"stock": [], "ours": []}
    tokens: dict[str, int] = {}
    for _ in range(args.repeats):  # alternated, best of each
        for name, run in (("stock", stock_run), ("ours", our_run)):
            started = time.perf_counter()
            tokens[name] = run()
            times[name].append(time.perf_counter() - started)
    stock, ours = min(times["stock"]), min(times["ours"])
    stock_tokens, our_tokens = tokens["stock"], tokens["ours"]

    print(f"items: {len(convs)}, max_new_tokens: {params.max_new_tokens}, threads: {torch.get_num_threads()}")
    print(f"stock_sampling_s: {stock:.2f} ({stock_tokens} tokens, {stock_tokens / stock:.1f} tok/s)")
    print(f"row_seeded_sampling_s: {ours:.2f} ({our_tokens} tokens, {our_tokens / ours:.1f} tok/s)")
    print(f"ratio: {stock / ours:.3f}")


if __name__ == "__main__":
    main()
