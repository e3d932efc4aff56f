"""fusebench's HF backend vs lm-eval's HF backend on the same GSM8K items, model and greedy settings, in one run.

lm-eval reads the same bundled JSONL through a local task config (its built-in tasks need the hub); it is timed at
each dtype:batch-size configuration given (its default batch of 1 is no fair baseline). fusebench runs with its
defaults (dtype auto: float32 on CPU, batch 64 on CPU) and, for a like-for-like figure, at each
dtype lm-eval was run with. Prints one line per figure, then:
  ratio_same_dtype_<dtype>: lm-eval's best at that dtype / fusebench at that dtype
  ratio_defaults: lm-eval's best at the checkpoint's dtype (its default, float32 here) / fusebench with its defaults
  ratio: the smallest same-dtype ratio (like for like; the figure the 1.5x target is about)
(higher = fusebench faster). Also times a fully cached fusebench rerun (target < 2 s, 0 model calls).

    python perf/eval_throughput.py --items 100 --max-new-tokens 256 --lm-eval-configs float32:1,float32:8,float32:32
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from fusebench.backends import BackendOptions, make_backend
from fusebench.backends.hf import pick_device, pick_dtype
from fusebench.evaluate import EvalConfig, run_eval
from fusebench.models import load_source, resolve_model
from fusebench.spec import benchmarks_dir, get_benchmark
from fusebench.store import Store


def time_fusebench(
    items: int, max_new_tokens: int, batch_size: int | None, dtype: str = "auto"
) -> tuple[float, float, int, list[str]]:
    """(first run seconds, cached rerun seconds, model calls on rerun, outputs)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/fb.db")
        config = EvalConfig(
            benchmarks=["gsm8k"], limit=items, generation={"max_new_tokens": max_new_tokens}, progress=False
        )
        options = BackendOptions(batch_size=batch_size, dtype=dtype)
        started = time.perf_counter()
        first = run_eval(config, store, lambda: make_backend("hf", None, options))
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        again = run_eval(config, store, lambda: make_backend("hf", None, options))
        cached = time.perf_counter() - started
        scores = store.get_scores(first.run_id, "gsm8k")
        gens = store.get_generations(s["generation_key"] for s in scores)
        order = sorted(scores, key=lambda s: int(s["sample_id"]))
        return elapsed, cached, again.model_calls, [gens[s["generation_key"]]["output"] for s in order]


def time_lm_eval(
    items: int, max_new_tokens: int, batch_size: int, model_dir: str, dtype: str
) -> tuple[float, list[str]]:
    import lm_eval

    spec = get_benchmark("gsm8k")
    data = str(benchmarks_dir() / str(spec.data.path))
    task = {
        "task": "gsm8k_fusebench_local",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": data}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{question}}",
        "doc_to_target": "{{answer.split('####')[-1].strip()}}",
        "generation_kwargs": {"until": ["<|im_end|>"], "max_gen_toks": max_new_tokens, "do_sample": False},
        "metric_list": [{"metric": "exact_match"}],
    }
    started = time.perf_counter()
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": model_dir, "dtype": dtype, "device": "cpu"},
        tasks=[task],
        batch_size=batch_size,
        limit=items,
        apply_chat_template=True,
        system_instruction=spec.prompt.system,
        log_samples=True,
        bootstrap_iters=0,
    )
    elapsed = time.perf_counter() - started
    assert results is not None
    samples = sorted(results["samples"]["gsm8k_fusebench_local"], key=lambda s: s["doc_id"])
    return elapsed, [s["resps"][0][0] for s in samples]


def same(a: list[str], b: list[str]) -> str:
    return f"{sum(x.strip() == y.strip() for x, y in zip(a, b, strict=True))}/{len(a)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=None, help="fusebench batch size (default: backend's)")
    parser.add_argument("--lm-eval-configs", default="float32:1,float32:8,float32:32", help="dtype:batch,...")
    parser.add_argument("--checkpoint-dtype", default="float32", help="the dtype lm-eval loads by default")
    args = parser.parse_args()

    model_dir, _ = load_source(resolve_model(None))
    fb_time, cached_time, cached_calls, fb_out = time_fusebench(args.items, args.max_new_tokens, args.batch_size)
    default_dtype = str(pick_dtype("auto", pick_device("auto"))).removeprefix("torch.")
    rate = args.items / fb_time
    print(f"fusebench hf defaults ({default_dtype}): {fb_time:.1f} s for {args.items} items ({rate:.2f} items/s)")
    print(f"fusebench cached rerun: {cached_time:.2f} s, {cached_calls} model calls")
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.lm_eval_configs.split(",")]
    best: dict[str, float] = {}
    same_dtype: list[float] = []
    for dtype in dict.fromkeys(d for d, _ in configs):
        if dtype == default_dtype:  # the defaults run already is this one
            fb_d, fb_d_out = fb_time, fb_out
        else:
            fb_d, _, _, fb_d_out = time_fusebench(args.items, args.max_new_tokens, args.batch_size, dtype)
        print(f"fusebench hf {dtype}: {fb_d:.1f} s")
        for bs in [b for d, b in configs if d == dtype]:
            lm_time, lm_out = time_lm_eval(args.items, args.max_new_tokens, bs, model_dir, dtype)
            print(f"lm-eval hf {dtype} batch {bs}: {lm_time:.1f} s; identical greedy outputs {same(fb_d_out, lm_out)}")
            best[dtype] = min(best.get(dtype, lm_time), lm_time)
        same_dtype.append(best[dtype] / fb_d)
        print(f"ratio_same_dtype_{dtype}: {same_dtype[-1]:.2f}")
        if dtype == args.checkpoint_dtype:
            print(f"identical greedy outputs fusebench defaults vs {dtype}: {same(fb_out, fb_d_out)}")
    baseline = best.get(args.checkpoint_dtype, min(best.values()))
    print(f"lm-eval best at {args.checkpoint_dtype}: {baseline:.1f} s")
    print(f"ratio_defaults: {baseline / fb_time:.2f}")
    print(f"ratio: {min(same_dtype):.2f}")


if __name__ == "__main__":
    main()
