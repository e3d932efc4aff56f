"""Speed figures of a run: tokens and seconds per benchmark and for the backend, model preparation and load times,
and the time of each stage. Stored in the run's summary under "speed"; report/table.py prints them."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fusebench.backends.base import Backend, Completion, EngineStats


def engine_stats(backend: Backend) -> EngineStats | None:
    """The backend's own figures (hf, vllm), or None (remote servers, test fakes)."""
    stats = getattr(backend, "stats", None)
    return stats if isinstance(stats, EngineStats) else None


@dataclass
class Tally:
    """Samples generated, their tokens and the seconds spent generating them."""

    samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, completion: Completion) -> None:
        self.samples += 1
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        rate = self.completion_tokens / self.seconds if self.seconds > 0 else None
        return {
            "samples": self.samples,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_s": None if rate is None else round(rate, 2),
        }


@dataclass
class SpeedMeter:
    """Generation speed of one eval. A generate call serves several benchmarks in shared batches, so its wall time
    goes to them in proportion to their completion tokens (by samples when no tokens came back)."""

    benchmarks: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    backend: Tally = field(default_factory=Tally)
    stages: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _call: dict[str, Tally] | None = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage (model preparation, generation, judging, scoring); stages run more than once add up."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] += time.perf_counter() - started

    @contextmanager
    def call(self, stats: EngineStats | None = None) -> Iterator[None]:
        """Time one backend.generate call; `add` its completions meanwhile. Loading the weights (which the first
        call does, `stats.load_s`) is not generating: it is left out."""
        self._call = defaultdict(Tally)
        loaded_before = stats is None or stats.load_s is not None
        started = time.perf_counter()
        try:
            yield
        finally:
            wall = time.perf_counter() - started
            if stats is not None and not loaded_before and stats.load_s is not None:
                wall = max(0.0, wall - stats.load_s)
            self.backend.seconds += wall
            served, self._call = self._call, None
            tokens = sum(t.completion_tokens for t in served.values())
            samples = sum(t.samples for t in served.values())
            for name, tally in served.items():
                share = tally.completion_tokens / tokens if tokens else tally.samples / samples
                self.benchmarks[name].seconds += wall * share

    def add(self, benchmark: str, completion: Completion) -> None:
        self.benchmarks[benchmark].add(completion)
        self.backend.add(completion)
        if self._call is not None:
            self._call[benchmark].add(completion)

    def tallies(self) -> dict[str, Any]:
        """All calls' tally with each benchmark's (judges: no engine figures)."""
        benchmarks = {name: tally.to_dict() for name, tally in sorted(self.benchmarks.items())}
        return {**self.backend.to_dict(), "benchmarks": benchmarks}

    def record(self, backend: Backend, **extra: Any) -> dict[str, Any]:
        """The run's "speed" record: stage seconds, the backend's tally with its device, dtype, batch size and
        engine figures (weights load time and size, decode steps), each benchmark's tally, and `extra`."""
        described = backend.describe()
        engine: dict[str, Any] = {key: described[key] for key in ("device", "dtype", "batch_size") if key in described}
        stats = engine_stats(backend)
        if stats is not None:
            engine.update(_rounded(stats.to_dict()))
        return {
            **_rounded(extra),
            "stages_s": {name: round(seconds, 3) for name, seconds in self.stages.items()},
            "backend": {"name": backend.name, **engine, **self.backend.to_dict()},
            "benchmarks": {name: tally.to_dict() for name, tally in sorted(self.benchmarks.items())},
        }


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {key: round(value, 3) if isinstance(value, float) else value for key, value in values.items()}
