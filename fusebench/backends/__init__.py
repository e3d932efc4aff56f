"""Model backends: chat conversations in, completions out. `make_backend` picks one by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fusebench.backends.base import Backend
from fusebench.errors import UsageError

if TYPE_CHECKING:
    from fusebench.backends.hf import HFBackend
    from fusebench.models import ResolvedModel

BACKENDS = ("hf", "vllm", "openai")


@dataclass(frozen=True)
class BackendOptions:
    """Options shared by the backends; each uses the ones that apply to it."""

    batch_size: int | None = None
    dtype: str = "auto"
    device: str = "auto"
    base_url: str | None = None  # openai: the server, e.g. http://127.0.0.1:8000/v1
    api_key_env: str | None = None  # openai: the env var holding the key (the key itself is never stored)
    concurrency: int = 16
    tensor_parallel_size: int = 1  # vllm
    data_parallel_size: int = 1  # vllm: one engine per group of tensor_parallel_size devices
    pipeline_parallel_size: int = 1  # vllm: layers split across nodes (multi-node, with Ray)
    distributed_executor_backend: str | None = None  # vllm: "ray" (multi-node) or "mp"; None: vLLM decides
    max_num_seqs: int | None = None  # vllm: sequences batched at once (memory vs throughput)
    enable_prefix_caching: bool = True  # vllm: reuse KV of shared prompt prefixes (system prompts, few-shot)
    max_model_len: int | None = None  # vllm
    gpu_memory_utilization: float = 0.9  # vllm
    enforce_eager: bool = False  # vllm: skip torch.compile (faster start)


def make_backend(name: str, model: str | None, options: BackendOptions) -> Backend:
    """Build the named backend for a model spec (None: the bundled default model)."""
    if name == "hf":
        from fusebench.backends.hf_identity import deferred_hf
        from fusebench.models import resolve_model

        resolved = resolve_model(model)
        deferred = deferred_hf(
            resolved, options.batch_size, options.dtype, options.device, lambda: _hf_backend(resolved, options)
        )
        return deferred if deferred is not None else _hf_backend(resolved, options)
    if name == "vllm":
        from fusebench.backends.vllm import VLLMBackend
        from fusebench.models import resolve_model

        return VLLMBackend(
            resolve_model(model),
            dtype=options.dtype,
            tensor_parallel_size=options.tensor_parallel_size,
            data_parallel_size=options.data_parallel_size,
            pipeline_parallel_size=options.pipeline_parallel_size,
            distributed_executor_backend=options.distributed_executor_backend,
            max_model_len=options.max_model_len,
            gpu_memory_utilization=options.gpu_memory_utilization,
            max_num_seqs=options.max_num_seqs,
            enable_prefix_caching=options.enable_prefix_caching,
            enforce_eager=options.enforce_eager,
        )
    if name == "openai":
        from fusebench.backends.openai import OpenAIBackend

        if not model or not options.base_url:
            raise UsageError("the openai backend needs a model name and --base-url")
        return OpenAIBackend(model, options.base_url, options.api_key_env, concurrency=options.concurrency)
    raise UsageError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")


def _hf_backend(model: ResolvedModel, options: BackendOptions) -> HFBackend:
    """The HF backend, built now (torch, tokenizer); its chat-template hash is remembered for deferred builds."""
    from fusebench.backends.hf import HFBackend
    from fusebench.backends.hf_identity import remember_template_hash

    backend = HFBackend(model, batch_size=options.batch_size, dtype=options.dtype, device=options.device)
    remember_template_hash(backend.chat.source, backend.chat.revision, backend.fingerprint()["chat_template"])
    return backend
