"""Model backends: chat conversations in, completions out. `make_backend` picks one by name."""

from __future__ import annotations

from dataclasses import dataclass

from fusebench.backends.base import Backend
from fusebench.errors import UsageError

BACKENDS = ("hf",)


@dataclass(frozen=True)
class BackendOptions:
    """Options shared by the backends; each uses the ones that apply to it."""

    batch_size: int | None = None
    dtype: str = "auto"
    device: str = "auto"


def make_backend(name: str, model: str | None, options: BackendOptions) -> Backend:
    """Build the named backend for a model spec (None: the bundled default model)."""
    if name == "hf":
        from fusebench.backends.hf import HFBackend
        from fusebench.models import resolve_model

        return HFBackend(resolve_model(model), batch_size=options.batch_size, dtype=options.dtype, device=options.device)
    raise UsageError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
