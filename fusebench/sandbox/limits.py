"""Resource limits of one sandboxed program."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


def scaled_timeout(reference_s: float, floor_s: float = 4.0, k: float = 4.0) -> float:
    """Timeout for a program whose reference solution took `reference_s`: max(floor, k * reference)."""
    return max(floor_s, k * reference_s)


@dataclass(frozen=True)
class Limits:
    """Per-program limits. `cpu_s` defaults to the wall-clock limit."""

    wall_s: float = 10.0
    cpu_s: float | None = None
    memory_mb: int = 2048  # RLIMIT_AS
    nproc: int = 64  # RLIMIT_NPROC (processes and threads of the sandbox uid)
    fsize_mb: int = 16  # RLIMIT_FSIZE: any file written, captured stdout/stderr included
    nofile: int = 256  # RLIMIT_NOFILE
    output_cap: int = 64 * 1024  # bytes of stdout / stderr kept in the Outcome

    def with_reference(self, reference_s: float, floor_s: float = 4.0, k: float = 4.0) -> Limits:
        """These limits with the wall-clock (and CPU) limit scaled to a reference runtime."""
        wall = scaled_timeout(reference_s, floor_s, k)
        return replace(self, wall_s=wall, cpu_s=None)

    def for_runner(self) -> dict[str, Any]:
        d = asdict(self)
        d["cpu_s"] = self.wall_s if self.cpu_s is None else self.cpu_s
        return d
