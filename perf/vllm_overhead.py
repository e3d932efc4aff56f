"""fusebench's vLLM backend vs raw `LLM.generate` on the same engine, GSM8K prompts and params, in one run.

The fusebench pass is a full `run_eval` (chat template, cache keys, store writes, scoring) on a fresh store; the raw
pass hands vLLM the same token prompts in one `LLM.generate` call. The prefix cache is reset before each timed pass.
Also times the HF backend on the same prompts. Prints one line per figure, then `ratio: X` = raw time / fusebench
time (1.0 = no overhead; the target is >= 0.95). Run it in the vLLM venv (bash scripts/install-vllm.sh):

    python perf/vllm_overhead.py --items 64 --max-new-tokens 128 [--enforce-eager] [--skip-hf]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from fusebench.backends.base import GenParams
from fusebench.backends.vllm import Engine, VLLMBackend, sampling_params
from fusebench.evaluate import EvalConfig, plan_benchmarks, run_eval
from fusebench.models import resolve_model
from fusebench.prompts import build_conversation
from fusebench.store import Store


def time_raw(engine: Engine, prompts: list[list[int]], params: GenParams) -> tuple[float, int]:
    """(seconds, completion tokens) of one LLM.generate call over all prompts."""
    from vllm.inputs import TokensPrompt

    engine.llm.reset_prefix_cache()
    started = time.perf_counter()
    outs = engine.llm.generate(
        [TokensPrompt(prompt_token_ids=p) for p in prompts], sampling_params(params), use_tqdm=False
    )
    elapsed = time.perf_counter() - started
    return elapsed, sum(len(o.outputs[0].token_ids) for o in outs)


def time_fusebench(backend: VLLMBackend, engine: Engine, config: EvalConfig) -> tuple[float, int]:
    """(seconds, model calls) of a full run_eval on a fresh store."""
    engine.llm.reset_prefix_cache()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/fb.db")
        started = time.perf_counter()
        outcome = run_eval(config, store, lambda: backend)
        return time.perf_counter() - started, outcome.model_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=1, help="alternating raw/fusebench passes; the best of each")
    parser.add_argument("--enforce-eager", action="store_true", help="skip torch.compile (minutes on small CPUs)")
    parser.add_argument("--skip-hf", action="store_true")
    args = parser.parse_args()

    config = EvalConfig(
        benchmarks=["gsm8k"], limit=args.items, generation={"max_new_tokens": args.max_new_tokens}, progress=False
    )
    (planned,) = plan_benchmarks(config)
    assert planned.data is not None and planned.params is not None
    params = planned.params
    convs = [build_conversation(planned.spec.prompt, item) for item in planned.data.items]

    started = time.perf_counter()
    backend = VLLMBackend(resolve_model(None), enforce_eager=args.enforce_eager)
    engine = backend.start()
    assert isinstance(engine, Engine)
    print(f"vllm engine start: {time.perf_counter() - started:.1f} s")
    prompts = [backend.chat.encode(c) for c in convs]

    raw_times, fb_times = [], []
    for _ in range(args.repeats):
        raw, tokens = time_raw(engine, prompts, params)
        raw_times.append(raw)
        print(f"raw LLM.generate: {raw:.1f} s, {tokens} tokens ({tokens / raw:.1f} tok/s)")
        fb, calls = time_fusebench(backend, engine, config)
        fb_times.append(fb)
        print(f"fusebench run_eval (vllm): {fb:.1f} s, {calls} model calls ({tokens / fb:.1f} tok/s)")
    raw, fb = min(raw_times), min(fb_times)
    print(f"fusebench overhead: {100 * (fb / raw - 1):+.1f} %")
    backend.close()  # its engine core would compete with HF for the cores

    if not args.skip_hf:
        from fusebench.backends.hf import HFBackend

        hf = HFBackend(resolve_model(None))
        started = time.perf_counter()
        hf_tokens = sum(c.completion_tokens for c in hf.generate(convs, params))
        hf_time = time.perf_counter() - started
        threads = hf.describe()["threads"]
        rate = hf_tokens / hf_time
        print(f"hf backend generate: {hf_time:.1f} s, {hf_tokens} tokens ({rate:.1f} tok/s, {threads} threads)")
        print(f"vllm/hf throughput: {(tokens / raw) / (hf_tokens / hf_time):.2f}")
    print(f"ratio: {raw / fb:.3f}")


if __name__ == "__main__":
    main()
