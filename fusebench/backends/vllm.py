"""vLLM backend: every prompt goes to the engine at once; completions are yielded as the engine finishes them.

The engine starts on the first generate() call, so a fully cached rerun never pays for it. vLLM starts its engine
core with multiprocessing spawn: scripts that use this backend need an `if __name__ == "__main__":` guard.
Data parallelism runs one engine per group of `tensor_parallel_size` devices, each in its own process, over a
round-robin shard of the prompts (vLLM's own offline DP mode needs an external launcher).
"""

from __future__ import annotations

import atexit
import importlib.metadata
import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fusebench.backends.base import (
    Completion,
    Conversation,
    EngineStats,
    GenParams,
    TokenCallback,
    TokenLogprob,
    report_tokens,
    sample_seed,
)
from fusebench.backends.chat import ChatTokenizer
from fusebench.backends.hf import pick_device, pick_dtype
from fusebench.errors import UsageError
from fusebench.keys import SAMPLER_FIELD
from fusebench.models import ResolvedModel

SAMPLER_VERSION = "prompt-seeded-1"  # vLLM's sampler, each request seeded from its prompt (base.sample_seed)
CPU_KV_CACHE_GIB = 1.0  # KV cache on CPU when neither kv_cache_gib nor VLLM_CPU_KVCACHE_SPACE is given
_POLL_S = 5.0  # how often a data-parallel generate checks that its workers are alive
_FINISH = {"stop": "stop", "length": "length"}  # vLLM's other reasons ("abort", "error") -> "error"

Prompt = tuple[int, list[int]]  # (index into the request list, prompt token ids)


@dataclass(frozen=True)
class EngineOptions:
    """Arguments of one vLLM engine (picklable: data-parallel workers get a copy)."""

    model: str
    revision: str | None
    dtype: str
    tensor_parallel_size: int
    pipeline_parallel_size: int
    distributed_executor_backend: str | None  # "ray" across nodes, "mp" on one node; None: vLLM decides
    max_model_len: int | None
    gpu_memory_utilization: float
    max_num_seqs: int | None
    enable_prefix_caching: bool
    seed: int
    enforce_eager: bool
    kv_cache_gib: float | None
    chunked_prefill: bool = True  # off on CPU: there a seeded request prefilled in chunks crashes vLLM's worker


def _version() -> str:
    for dist in ("vllm", "vllm-cpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise UsageError("the vllm backend needs vLLM: bash scripts/install-vllm.sh (its own venv, .venv-vllm)")


def sampling_params(params: GenParams) -> Any:
    """GenParams -> vllm.SamplingParams. Greedy asks for one sample (the backend repeats it n times)."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    return SamplingParams(
        n=1 if params.greedy else params.n,
        temperature=params.temperature,
        top_p=params.top_p,
        max_tokens=params.max_new_tokens,
        stop=list(params.stop) or None,
        seed=None if params.greedy else params.seed,  # per request in Engine.run; sample j: + j (vLLM's fan-out)
        logprobs=params.logprobs or None,
        output_kind=RequestOutputKind.FINAL_ONLY,
    )


def _seeded(sampling: Any, params: GenParams, ids: Sequence[int]) -> Any:
    """The request's own SamplingParams when sampling: seeded from its prompt (base.sample_seed), not the run seed."""
    if params.greedy:
        return sampling
    own = sampling.clone()
    own.seed = sample_seed(params.seed, ids, 0)
    return own


class Engine:
    """One vLLM engine: runs token prompts through its step loop and yields each request when it finishes."""

    def __init__(self, options: EngineOptions) -> None:
        from vllm import LLM

        kwargs: dict[str, Any] = {
            "revision": options.revision,
            "dtype": options.dtype,
            "tensor_parallel_size": options.tensor_parallel_size,
            "pipeline_parallel_size": options.pipeline_parallel_size,
            "max_model_len": options.max_model_len,
            "gpu_memory_utilization": options.gpu_memory_utilization,
            "enable_prefix_caching": options.enable_prefix_caching,
            "seed": options.seed,
            "enforce_eager": options.enforce_eager,
        }
        if options.max_num_seqs is not None:
            kwargs["max_num_seqs"] = options.max_num_seqs
        if options.distributed_executor_backend is not None:
            kwargs["distributed_executor_backend"] = options.distributed_executor_backend
        if options.kv_cache_gib is not None:
            kwargs["kv_cache_memory_bytes"] = int(options.kv_cache_gib * (1 << 30))
        if not options.chunked_prefill:  # vLLM then takes whole prompts per step (a step's budget >= max_model_len)
            kwargs["enable_chunked_prefill"] = False
        self.llm = LLM(options.model, **kwargs)
        self.max_model_len = int(self.llm.model_config.max_model_len)
        self.calls = 0
        self.closed = False
        # vLLM's engine core is a non-daemonic child: left running, interpreter exit waits on it forever
        atexit.register(self.close)

    def run(self, prompts: Sequence[Prompt], params: GenParams) -> Iterator[Completion]:
        """Add every prompt, then step the engine, yielding completions (n per prompt) as requests finish."""
        from vllm.inputs import TokensPrompt

        engine = self.llm.llm_engine
        self.calls += 1
        sampling = sampling_params(params)
        started = time.perf_counter()
        pending: dict[str, Prompt] = {}
        try:
            for index, ids in prompts:
                # Our own request ids (LLMEngine.add_request), so outputs map back to prompts as they finish.
                request_id = f"fb{self.calls}-{index}"
                engine.add_request(request_id, TokensPrompt(prompt_token_ids=ids), _seeded(sampling, params, ids))
                pending[request_id] = (index, ids)
            while pending:
                for output in engine.step():
                    if output.finished and output.request_id in pending:
                        index, ids = pending.pop(output.request_id)
                        yield from _completions(index, len(ids), output, params, time.perf_counter() - started)
        finally:
            if pending:  # the consumer stopped early or a step failed: free the engine for the next call
                engine.abort_request(list(pending))

    def close(self) -> None:
        """Shut the engine-core process down (at the latest at interpreter exit); a second call does nothing."""
        if not self.closed:
            self.closed = True
            atexit.unregister(self.close)
            self.llm.llm_engine.engine_core.shutdown()


def _completions(
    index: int, prompt_tokens: int, output: Any, params: GenParams, latency: float
) -> Iterator[Completion]:
    samples = output.outputs if not params.greedy else [output.outputs[0]] * params.n
    for j, sample in enumerate(samples):
        meta: dict[str, Any] = {"sample": j} if params.n > 1 else {}
        if params.logprobs and sample.logprobs:
            meta["logprobs"] = [
                _token_logprob(token, alternatives)
                for token, alternatives in zip(sample.token_ids, sample.logprobs, strict=True)
            ]
        reason = _FINISH.get(sample.finish_reason or "", "error")
        yield Completion(index, sample.text, prompt_tokens, len(sample.token_ids), reason, latency, meta)


def _token_logprob(token_id: int, alternatives: dict[int, Any]) -> dict[str, Any]:
    """vLLM's {token id: Logprob} of one position -> asdict(TokenLogprob)."""
    top = {str(lp.decoded_token): float(lp.logprob) for lp in alternatives.values()}
    chosen = alternatives[token_id]
    return asdict(TokenLogprob(str(chosen.decoded_token), float(chosen.logprob), top))


def _worker(options: EngineOptions, env: dict[str, str], jobs: Any, results: Any) -> None:
    """A data-parallel rank: its own engine on its own devices, serving jobs until it gets None."""
    os.environ.update(env)  # before vLLM is imported: device visibility, CPU core binding
    engine = None
    try:
        engine = Engine(options)
        results.put(("ready", None, engine.max_model_len))
        while (job := jobs.get()) is not None:
            job_id, prompts, params = job
            for completion in engine.run(prompts, params):
                results.put(("completion", job_id, completion))
            results.put(("end", job_id, None))
    except BaseException:
        results.put(("error", None, traceback.format_exc()))
    finally:
        if engine is not None:
            engine.close()


def _rank_envs(data_parallel_size: int, tensor_parallel_size: int, cuda: bool) -> list[dict[str, str]]:
    """Per-rank environment: a disjoint slice of the visible GPUs, or of the allowed CPU cores."""
    if cuda:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        import torch

        devices = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
        need = data_parallel_size * tensor_parallel_size
        if len(devices) < need:
            raise UsageError(
                f"dp {data_parallel_size} x tp {tensor_parallel_size} needs {need} GPUs, {len(devices)} seen"
            )
        return [
            {"CUDA_VISIBLE_DEVICES": ",".join(devices[r * tensor_parallel_size : (r + 1) * tensor_parallel_size])}
            for r in range(data_parallel_size)
        ]
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < data_parallel_size:
        raise UsageError(f"data parallel size {data_parallel_size} needs as many CPU cores, {len(cores)} allowed")
    per = len(cores) // data_parallel_size
    binds = [",".join(str(c) for c in cores[r * per : (r + 1) * per]) for r in range(data_parallel_size)]
    return [{"VLLM_CPU_OMP_THREADS_BIND": b} for b in binds]


class DataParallelEngines:
    """`data_parallel_size` engines in spawned processes; a generate call shards its prompts round-robin."""

    def __init__(self, options: EngineOptions, envs: list[dict[str, str]]) -> None:
        ctx = mp.get_context("spawn")
        self.results: Any = ctx.Queue()
        self.jobs: list[Any] = [ctx.Queue() for _ in envs]
        # not daemonic: each worker starts vLLM's own engine-core process
        self.procs = [
            ctx.Process(target=_worker, args=(options, env, q, self.results))
            for env, q in zip(envs, self.jobs, strict=True)
        ]
        for proc in self.procs:
            proc.start()
        atexit.register(self.close)
        self.calls = 0
        self.max_model_len = min(int(self._next()[2]) for _ in self.procs)

    def _next(self) -> tuple[str, Any, Any]:
        """The next (kind, job id, payload) from any worker; raises if a worker failed or died."""
        while True:
            try:
                kind, job_id, payload = self.results.get(timeout=_POLL_S)
            except queue.Empty:
                if all(p.is_alive() for p in self.procs):
                    continue
                self.close()
                raise RuntimeError("a vLLM data-parallel worker died") from None
            if kind == "error":
                self.close()
                raise RuntimeError(f"a vLLM data-parallel worker failed:\n{payload}")
            return kind, job_id, payload

    def run(self, prompts: Sequence[Prompt], params: GenParams) -> Iterator[Completion]:
        """Shard the prompts over the workers and yield completions from any of them as they come."""
        self.calls += 1
        job_id = self.calls
        shards = [list(prompts[r :: len(self.procs)]) for r in range(len(self.procs))]
        busy = 0
        for jobs, shard in zip(self.jobs, shards, strict=True):
            if shard:
                jobs.put((job_id, shard, params))
                busy += 1
        while busy:
            kind, got_job, payload = self._next()
            if got_job != job_id:
                continue  # left over from an earlier call that its consumer abandoned
            if kind == "end":
                busy -= 1
            else:
                yield payload

    def close(self) -> None:
        """Stop the workers (each shuts its engine down)."""
        for jobs, proc in zip(self.jobs, self.procs, strict=True):
            if proc.is_alive():
                jobs.put(None)
        for proc in self.procs:
            proc.join(timeout=60)
            if proc.is_alive():  # stuck: its engine core may outlive it
                proc.kill()
                proc.join()


class VLLMBackend:
    """A vLLM engine behind the Backend protocol (created lazily on the first generate call)."""

    name = "vllm"

    def __init__(
        self,
        model: ResolvedModel,
        *,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        pipeline_parallel_size: int = 1,
        data_parallel_size: int = 1,
        distributed_executor_backend: str | None = None,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        max_num_seqs: int | None = None,
        enable_prefix_caching: bool = True,
        seed: int = 0,
        enforce_eager: bool = False,
        kv_cache_gib: float | None = None,
    ) -> None:
        for label, value in (
            ("tensor parallel size", tensor_parallel_size),
            ("pipeline parallel size", pipeline_parallel_size),
            ("data parallel size", data_parallel_size),
        ):
            if value < 1:
                raise UsageError(f"{label} must be >= 1, got {value}")
        if distributed_executor_backend not in (None, "ray", "mp"):
            raise UsageError(f"distributed executor backend must be ray or mp, got {distributed_executor_backend!r}")
        if not 0 < gpu_memory_utilization <= 1:
            raise UsageError(f"gpu memory utilization must be in (0, 1], got {gpu_memory_utilization}")
        if max_model_len is not None and max_model_len < 2:
            raise UsageError(f"max model len must be >= 2, got {max_model_len}")
        self.version = _version()
        self.device = pick_device("auto")
        self.dtype = str(pick_dtype(dtype, self.device)).removeprefix("torch.")
        self.chat = ChatTokenizer(model)
        source, revision = self.chat.source, self.chat.revision
        cpu = self.device.type == "cpu"
        if cpu:
            # vLLM reserves a core for its frontend by default: on small CPU machines that halves decoding speed.
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
            if kv_cache_gib is None and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
                kv_cache_gib = CPU_KV_CACHE_GIB  # else vLLM sizes it from a share of all host memory
        self.data_parallel_size = data_parallel_size
        self.options = EngineOptions(
            model=source,
            revision=revision,
            dtype=self.dtype,
            tensor_parallel_size=tensor_parallel_size,
            pipeline_parallel_size=pipeline_parallel_size,
            distributed_executor_backend=distributed_executor_backend,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            max_num_seqs=max_num_seqs,
            enable_prefix_caching=enable_prefix_caching,
            seed=seed,
            enforce_eager=enforce_eager,
            kv_cache_gib=kv_cache_gib,
            # vLLM CPU 0.32 rewinds a seeded request's generator after a partial prefill, which CPU generators
            # refuse ("CPU Generator does not use offset"): sampling with per-request seeds needs whole prefills
            chunked_prefill=not cpu,
        )
        self.engine: Engine | DataParallelEngines | None = None
        self.stats = EngineStats()

    def fingerprint(self) -> dict[str, str]:
        """Model identity + weights + chat-template hash + dtype, and the engine (vLLM's outputs differ from HF's)."""
        return {**self.chat.fingerprint(self.dtype), "backend": "vllm", SAMPLER_FIELD: SAMPLER_VERSION}

    def describe(self) -> dict[str, Any]:
        """Engine details recorded with a run."""
        options = asdict(self.options)
        del options["model"], options["revision"]
        return {
            "engine": "vllm",
            "vllm": self.version,
            "device": self.device.type,
            "data_parallel_size": self.data_parallel_size,
            **options,
            "max_model_len": self.engine.max_model_len if self.engine else self.options.max_model_len,
        }

    def start(self) -> Engine | DataParallelEngines:
        """The engine(s), started on first use (start time in stats.load_s)."""
        if self.engine is None:
            started = time.perf_counter()
            if self.data_parallel_size == 1:
                self.engine = Engine(self.options)
            else:
                envs = _rank_envs(
                    self.data_parallel_size, self.options.tensor_parallel_size, self.device.type == "cuda"
                )
                self.engine = DataParallelEngines(self.options, envs)
            self.stats.load_s = time.perf_counter() - started
        return self.engine

    def generate(
        self, convs: Sequence[Conversation], params: GenParams, on_tokens: TokenCallback | None = None
    ) -> Iterator[Completion]:
        """Yield completions (n per conversation; meta["sample"] = j when n > 1) in the order they finish, each
        one's tokens reported to `on_tokens` as it arrives."""
        if not convs:
            return
        prompts = [(i, self.chat.encode(c)) for i, c in enumerate(convs)]
        engine = self.start()
        started = time.perf_counter()
        try:
            yield from report_tokens(engine.run(prompts, params), params, on_tokens)
        finally:
            self.stats.generate_s += time.perf_counter() - started

    def close(self) -> None:
        """Shut the engine(s) down; the next generate() starts them again."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None
