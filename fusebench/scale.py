"""A benchmark's scale: how its per-item scores read as points, the headline's best value, and its direction.

A scorer or judge mode owns its scale (`fusebench.scoring.scale_of`); every run stores it with each benchmark's
result, so `compare`, `gate`, `history` and the report read a stored run's scale instead of knowing benchmarks by
name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Scale:
    """`points_per_unit`: display points per unit of a per-item score (100 turns a 0-1 proportion into points, 1 keeps
    a 1-10 rating as it is); `full`: the headline's best value in display points (100, or 10 for a 1-10 rating);
    `higher_is_better`: the direction in which a delta is a gain."""

    points_per_unit: float = 100.0
    full: float = 100.0
    higher_is_better: bool = True

    @property
    def to_percent(self) -> float:
        """Factor that puts a display-points value on a 0-100 scale (10 for a 1-10 rating): the normalised average
        and `gate --max-drop` count in these."""
        return 100.0 / self.full

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Scale:
        return cls(**raw) if raw else PROPORTION


PROPORTION = Scale(points_per_unit=100.0, full=100.0)  # accuracy, pass@1, win rates: 0-1 per item, 0-100 points
RATING_10 = Scale(points_per_unit=1.0, full=10.0)  # a judge's 1-10 rating per item and as the headline
