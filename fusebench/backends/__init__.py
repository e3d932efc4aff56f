"""Model backends: chat conversations in, completions out. `make_backend` picks one by name."""

from __future__ import annotations

from dataclasses import dataclass

from fusebench.backends.base import Backend
from fusebench.errors import UsageError

BACKENDS = ("hf", "openai")


@dataclass(frozen=True)
class BackendOptions:
    """Options shared by the backends; each uses the ones that apply to it."""

    batch_size: int | None = None
    dtype: str = "auto"
    device: str = "auto"
    base_url: str | None = None  # openai: the server, e.g. http://127.0.0.1:8000/v1
    api_key_env: str | None = None  # openai: the env var holding the key (the key itself is never stored)
    concurrency: int = 16


def make_backend(name: str, model: str | None, options: BackendOptions) -> Backend:
    """Build the named backend for a model spec (None: the bundled default model)."""
    if name == "hf":
        from fusebench.backends.hf import HFBackend
        from fusebench.models import resolve_model

        return HFBackend(
            resolve_model(model), batch_size=options.batch_size, dtype=options.dtype, device=options.device
        )
    if name == "openai":
        from fusebench.backends.openai import OpenAIBackend

        if not model or not options.base_url:
            raise UsageError("the openai backend needs a model name and --base-url")
        return OpenAIBackend(model, options.base_url, options.api_key_env, concurrency=options.concurrency)
    raise UsageError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
