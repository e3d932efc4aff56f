"""Typed records of a run: its settings (what it was configured to do) and its summary (what came out).

The store keeps them as JSON in `runs.settings` and `runs.summary`; they are written and parsed here only. Both read
every shape fusebench has stored (the fixture store of tests/fixtures/store_v1 proves the oldest), and write the same
JSON: a run's settings are hashed into its config hash (the resume key), so a key present or absent changes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SETTINGS_VERSION = 1
"""The settings layout; not stored in the JSON (that would change every config hash), stored runs are all 1."""
SUMMARY_VERSION = 1
"""The summary layout, stored as `record_version` (absent in summaries written before it: the same layout)."""


@dataclass(frozen=True)
class BenchmarkSettings:
    """One native benchmark as a run planned it: enough to rebuild the plan and rescore without a model."""

    version: int
    n_items: int
    params: dict[str, Any]  # GenerationParams.to_dict()
    params_by: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-item overrides, by field value
    data_options: dict[str, Any] | None = None  # e.g. GPQA's option-shuffle seed
    judge: dict[str, Any] | None = None  # JudgeOptions.describe(): the judge identity, on judged benchmarks

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version, "n_items": self.n_items, "params": self.params}
        if self.params_by:  # absent where the spec has none: older runs' config hashes stay
            out["params_by"] = self.params_by
        out["data_options"] = self.data_options
        if self.judge is not None:
            out["judge"] = self.judge
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> BenchmarkSettings:
        return cls(
            version=int(raw["version"]),
            n_items=int(raw["n_items"]),
            params=dict(raw["params"]),
            params_by=dict(raw.get("params_by") or {}),
            data_options=raw.get("data_options"),
            judge=raw.get("judge"),
        )


@dataclass(frozen=True)
class RunSettings:
    """A run's configuration. `per_benchmark` holds the native benchmarks only (an imported run has none: it cannot
    be re-planned or rescored); `source` names where an imported run came from ("lm-eval"), `extra` keeps the
    importer's own fields (its config, n-shot, date) as they were stored."""

    seed: int | None = None
    limit: int | None = None
    generation: dict[str, Any] | None = None  # the command line's generation overrides
    per_benchmark: dict[str, BenchmarkSettings] = field(default_factory=dict)
    judge_options: dict[str, Any] | None = None  # judge model, backend, max_tokens (budget and prices are not)
    source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def imported(self) -> bool:
        return self.source is not None

    def judges(self) -> dict[str, dict[str, Any]]:
        """benchmark -> the judge identity the run recorded."""
        return {name: b.judge for name, b in self.per_benchmark.items() if b.judge is not None}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.source is not None:
            out["source"] = self.source
        out.update(self.extra)
        if self.source is None:
            out["generation"] = self.generation
        out.update(seed=self.seed, limit=self.limit)
        out["per_benchmark"] = {name: b.to_json() for name, b in self.per_benchmark.items()}
        if self.judge_options is not None:
            out["judge_options"] = self.judge_options
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> RunSettings:
        raw = dict(raw or {})
        known = {"seed", "limit", "generation", "per_benchmark", "judge_options", "source"}
        return cls(
            seed=raw.get("seed"),
            limit=raw.get("limit"),
            generation=raw.get("generation"),
            per_benchmark={k: BenchmarkSettings.from_json(v) for k, v in (raw.get("per_benchmark") or {}).items()},
            judge_options=raw.get("judge_options"),
            source=raw.get("source"),
            extra={k: v for k, v in raw.items() if k not in known},
        )


@dataclass(frozen=True)
class RunSummary:
    """What a finished (or rescored) run produced: per-benchmark result rows as stored, the judges' fingerprints,
    what is incomplete and why, the speed record, and when it was rescored."""

    results: list[dict[str, Any]] = field(default_factory=list)
    judge_fingerprints: dict[str, Any] = field(default_factory=dict)
    incomplete: dict[str, dict[str, Any]] = field(default_factory=dict)  # benchmark -> missing count and reason
    speed: dict[str, Any] | None = None  # fusebench.speed.SpeedMeter.record
    rescored_at: str | None = None
    version: int = SUMMARY_VERSION

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "record_version": self.version,
            "results": self.results,
            "judge_fingerprints": self.judge_fingerprints,
            "incomplete": self.incomplete,
        }
        if self.speed is not None:
            out["speed"] = self.speed
        if self.rescored_at is not None:
            out["rescored_at"] = self.rescored_at
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> RunSummary:
        """Also reads older summaries (their "not_implemented" list, always empty, is dropped)."""
        raw = raw or {}
        return cls(
            results=list(raw.get("results") or []),
            judge_fingerprints=dict(raw.get("judge_fingerprints") or {}),
            incomplete=dict(raw.get("incomplete") or {}),
            speed=raw.get("speed"),
            rescored_at=raw.get("rescored_at"),
            version=int(raw.get("record_version", 1)),
        )
