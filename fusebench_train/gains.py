"""Stage 6: evaluate base, SFT and fused models with the harness, then the gains table over the base.

Each model is one tagged run in the store (tags: family, stage, step). Gains are paired per item
(fusebench.stats.paired_delta_ci over the items both runs scored), in points.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fusebench.stats import paired_delta_ci
from fusebench.store import Store


@dataclass(frozen=True)
class EvalTarget:
    """A model to evaluate: its stage name (base, sft, fused, source:<name>) and model spec."""

    stage: str
    model: str
    step: int = 0


def item_scores(store: Store, run_id: str, benchmark: str) -> dict[str, float]:
    """Per-item score of a run (samples of an item averaged), in points."""
    per: dict[str, list[float]] = defaultdict(list)
    for row in store.get_scores(run_id, benchmark):
        per[row["sample_id"]].append(float(row["score"]))
    return {k: 100 * sum(v) / len(v) for k, v in per.items()}


def gains(store: Store, runs: Mapping[str, str], benchmarks: Sequence[str]) -> dict[str, Any]:
    """Per benchmark: each stage's score, and each non-base stage's paired delta over base with a 95% CI.

    `runs` maps stage name -> run id and must contain "base". When sources were evaluated, each row also
    says whether the fused model beat the best source.
    """
    rows = []
    for bench in benchmarks:
        scores = {stage: item_scores(store, run_id, bench) for stage, run_id in runs.items()}
        base = scores["base"]
        row: dict[str, Any] = {"benchmark": bench, "n": len(base), "scores": {}, "delta": {}}
        for stage, per in scores.items():
            row["scores"][stage] = sum(per.values()) / len(per) if per else None
            if stage == "base":
                continue
            common = sorted(set(base) & set(per))
            if common:
                ci = paired_delta_ci([base[i] for i in common], [per[i] for i in common])
                row["delta"][stage] = {"estimate": ci.estimate, "low": ci.low, "high": ci.high}
        sources = {s: v for s, v in row["scores"].items() if s.startswith("source:") and v is not None}
        if sources and row["scores"].get("fused") is not None:
            best = max(sources, key=lambda s: sources[s])
            row["best_source"] = best
            row["fused_beats_best_source"] = row["scores"]["fused"] > sources[best]
        rows.append(row)
    stages = [s for s in runs if s != "base"]
    average = {
        s: sum(r["delta"][s]["estimate"] for r in rows) / len(rows)
        for s in stages
        if rows and all(s in r["delta"] for r in rows)
    }
    return {"runs": dict(runs), "rows": rows, "average_delta": average}


def format_gains(table: Mapping[str, Any]) -> str:
    """The gains table: scores per stage, delta over base [95% CI] per trained stage, and the average."""
    from tabulate import tabulate

    stages = list(table["runs"])
    deltas = [s for s in stages if s != "base" and not s.startswith("source:")]
    has_sources = any(s.startswith("source:") for s in stages)
    headers = ["benchmark", "n", *stages, *(f"Δ {s} [95% CI]" for s in deltas)]
    if has_sources:
        headers.append("fused > best source")
    body = []
    for r in table["rows"]:
        line = [r["benchmark"], r["n"], *(_fmt(r["scores"].get(s)) for s in stages)]
        for s in deltas:
            d = r["delta"].get(s)
            line.append(f"{d['estimate']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]" if d else "-")
        if has_sources:
            beats = r.get("fused_beats_best_source")
            line.append("-" if beats is None else f"{'yes' if beats else 'no'} ({r['best_source']})")
        body.append(line)
    avg = ["average (Δ mean)", "", *([""] * len(stages))]
    avg += [f"{table['average_delta'][s]:+.1f}" if s in table["average_delta"] else "-" for s in deltas]
    if has_sources:
        avg.append("")
    body.append(avg)
    return tabulate(body, headers=headers, disable_numparse=True)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
