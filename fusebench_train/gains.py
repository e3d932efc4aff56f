"""Stage 6: evaluate base, SFT and fused models with the harness, then the gains table: is a gain real?

Each model is one tagged run in the store (tags: family, stage, step). Every comparison below is fusebench's
paired comparison (`fusebench.compare.compare_runs`: per-item paired bootstrap 95% CI, McNemar or sign-flip
permutation p-value, Holm across the benchmarks of the comparison), in points:
  - each stage (sft, fused, every evaluated source) against base;
  - fused against SFT: what DPO adds on top of SFT-only (FuseChat-3.0 reports both);
  - fused against the best source of each benchmark (Holm over those per-benchmark tests, `fusebench.stats.holm`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fusebench.compare import ALPHA, PairedResult, RunData, compare_runs, load_runs
from fusebench.stats import Interval, holm
from fusebench.store import Store

GAINS_TEXT = "gains.md"


@dataclass(frozen=True)
class EvalTarget:
    """A model to evaluate: its stage name (base, sft, fused, source:<name>) and model spec."""

    stage: str
    model: str
    step: int = 0


def interval(d: Interval) -> dict[str, Any]:
    """An estimate with its CI as plain data: low/high None (and the reason) where the data cannot give a CI."""
    if d.unavailable:
        return {"estimate": d.estimate, "low": None, "high": None, "ci_unavailable": d.unavailable}
    return {"estimate": d.estimate, "low": d.low, "high": d.high}


def _paired(result: PairedResult, alpha: float) -> dict[str, Any]:
    return {
        **interval(result.delta),
        "n": result.n_shared,
        "test": result.test,
        "p": result.p,
        "p_holm": result.p_holm,
        "mde": result.mde,
        "significant": result.p_holm < alpha,
    }


def _compare(a: RunData, b: RunData, benchmarks: Sequence[str], alpha: float) -> dict[str, dict[str, Any]]:
    """benchmark -> paired `b - a` (Holm across `benchmarks`), for the benchmarks both runs have."""
    keep = set(benchmarks)
    trimmed = [RunData(r.info, {k: v for k, v in r.results.items() if k in keep}, r.items) for r in (a, b)]
    out = {}
    for row in compare_runs(trimmed, alpha).rows:
        result = row.deltas[0]
        if result is not None:
            out[row.benchmark] = _paired(result, alpha)
    return out


def gains(store: Store, runs: Mapping[str, str], benchmarks: Sequence[str], alpha: float = ALPHA) -> dict[str, Any]:
    """The gains table as plain data. `runs` maps stage name -> run id and must contain "base"."""
    ids = list(dict.fromkeys(runs.values()))  # a source that is the target itself may share base's run
    loaded = dict(zip(ids, load_runs(store, ids, list(benchmarks)), strict=True))
    data = {stage: loaded[run_id] for stage, run_id in runs.items()}
    base = data["base"]
    vs_base = {s: _compare(base, d, benchmarks, alpha) for s, d in data.items() if s != "base"}
    dpo = _compare(data["sft"], data["fused"], benchmarks, alpha) if {"sft", "fused"} <= set(data) else {}
    sources = [s for s in data if s.startswith("source:")]
    rows = []
    for bench in benchmarks:
        scores = {s: _score(d, bench) for s, d in data.items()}
        row: dict[str, Any] = {
            "benchmark": bench,
            "n": (base.results.get(bench) or {}).get("n"),
            "scores": scores,
            "delta": {s: per[bench] for s, per in vs_base.items() if bench in per},
        }
        if bench in dpo:
            row["dpo_over_sft"] = dpo[bench]
        rows.append(row)
    if sources and "fused" in data:
        _against_best_source(rows, data, sources, alpha)
    stages = [s for s in runs if s != "base"]
    average = {
        s: sum(r["delta"][s]["estimate"] for r in rows) / len(rows)
        for s in stages
        if rows and all(s in r["delta"] for r in rows)
    }
    return {"runs": dict(runs), "alpha": alpha, "rows": rows, "average_delta": average}


def _against_best_source(
    rows: list[dict[str, Any]], data: Mapping[str, RunData], sources: Sequence[str], alpha: float
) -> None:
    """Per benchmark, fused vs the source that scored best there; Holm over the benchmarks so compared."""
    tested = []
    for row in rows:
        scored = {s: row["scores"][s] for s in sources if row["scores"].get(s) is not None}
        if not scored or row["scores"].get("fused") is None:
            continue
        best = max(scored, key=lambda s: scored[s])  # sources share their items (eval.source_limit applies to all)
        row["best_source"] = best
        paired = _compare(data[best], data["fused"], [row["benchmark"]], alpha).get(row["benchmark"])
        # on the items both scored: a source evaluated on fewer items is not compared with fused's whole-set score
        row["fused_beats_best_source"] = paired["estimate"] > 0 if paired else row["scores"]["fused"] > scored[best]
        if paired is not None:
            row["fused_vs_best_source"] = paired
            tested.append(paired)
    for paired, p_holm in zip(tested, holm([t["p"] for t in tested]) if tested else [], strict=True):
        paired["p_holm"] = p_holm
        paired["significant"] = p_holm < alpha


def _score(run: RunData, bench: str) -> float | None:
    row = run.results.get(bench)
    return None if row is None or row["score"] is None else float(row["score"])


def _delta(d: Mapping[str, Any] | None) -> str:
    if not d:
        return "-"
    mark = " *" if d["significant"] else ""
    return f"{d['estimate']:+.1f} {ci_text(d)} p={d['p_holm']:.3g}{mark}"


def ci_text(d: Mapping[str, Any]) -> str:
    """ "[low, high]", or "[n/a: reason]" where the data cannot give a CI."""
    if d.get("low") is None:
        return f"[n/a: {d.get('ci_unavailable') or 'no CI'}]"
    return f"[{d['low']:+.1f}, {d['high']:+.1f}]"


def format_gains(table: Mapping[str, Any]) -> str:
    """The gains table: scores per stage, then each trained stage's delta over base [95% CI] with its
    Holm-adjusted p (* = significant), DPO over SFT, fused vs the best source, and the average delta."""
    from tabulate import tabulate

    stages = list(table["runs"])
    deltas = [s for s in stages if s != "base" and not s.startswith("source:")]
    has_sources = any(s.startswith("source:") for s in stages)
    has_dpo = any("dpo_over_sft" in r for r in table["rows"])
    headers = ["benchmark", "n", *stages, *(f"Δ {s} vs base [95% CI]" for s in deltas)]
    if has_dpo:
        headers.append("Δ fused vs sft (DPO)")
    if has_sources:
        headers.append("fused vs best source")
    body = []
    for r in table["rows"]:
        line = [r["benchmark"], r["n"], *(_fmt(r["scores"].get(s)) for s in stages)]
        line += [_delta(r["delta"].get(s)) for s in deltas]
        if has_dpo:
            line.append(_delta(r.get("dpo_over_sft")))
        if has_sources:
            best = r.get("best_source")
            line.append("-" if best is None else f"{_delta(r.get('fused_vs_best_source'))} ({best})")
        body.append(line)
    avg = ["average (Δ mean)", "", *([""] * len(stages))]
    avg += [f"{table['average_delta'][s]:+.1f}" if s in table["average_delta"] else "-" for s in deltas]
    avg += [""] * (int(has_dpo) + int(has_sources))
    body.append(avg)
    alpha = table.get("alpha", ALPHA)
    note = (
        f"Δ: paired difference in points over the items both runs scored, 95% paired-bootstrap CI; p: McNemar "
        f"(0/1 items) or sign-flip permutation, Holm-adjusted across benchmarks; * = significant at {alpha}."
    )
    return tabulate(body, headers=headers, disable_numparse=True) + "\n" + note + "\n" + _verdict(table)


def _verdict(table: Mapping[str, Any]) -> str:
    """One line: the held-out benchmarks where the fused model is significantly better (or worse) than base."""
    fused = [(r["benchmark"], r["delta"].get("fused")) for r in table["rows"]]
    up = [b for b, d in fused if d and d["significant"] and d["estimate"] > 0]
    down = [b for b, d in fused if d and d["significant"] and d["estimate"] < 0]
    parts = [f"significant gain on {', '.join(up)}" if up else "no significant gain"]
    if down:
        parts.append(f"significant loss on {', '.join(down)}")
    return f"fused vs base after Holm correction: {'; '.join(parts)}"


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
