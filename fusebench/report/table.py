"""The per-run results table: benchmarks grouped by category, score with 95% CI, and the average."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from fusebench.spec import CATEGORIES, averaged

HEADERS = ("category", "benchmark", "metric", "n", "score", "95% CI", "no answer", "errors")
JUDGE_HEADER = "judge failures"


def average(scores: Sequence[float]) -> float | None:
    """FuseChat-3.0's convention: the plain mean of the raw benchmark numbers."""
    return sum(scores) / len(scores) if scores else None


def _judge(r: dict[str, Any]) -> dict[str, Any] | None:
    return (r.get("details") or {}).get("judge")


def _score_cell(r: dict[str, Any]) -> str:
    details = r.get("details") or {}
    if r["score"] is not None:  # MT-Bench: ratings outside 1-10, counted as FastChat counts them, flagged beside it
        suspect = (details.get("metrics") or {}).get("suspect_ratings")
        return f"{r['score']:.2f}" + (f" ({suspect} suspect)" if suspect else "")
    if details.get("errors"):  # items whose model request failed: never scored, a rerun retries them
        return f"incomplete ({details['errors']} errors)"
    if details.get("missing_judgments"):
        return f"incomplete ({details['missing_judgments']} unjudged)"
    return "no verdicts" if details.get("judge_failures") == details.get("n_judgments") else "n/a"


def results_table(
    results: Sequence[dict[str, Any]],
    fmt: str = "simple",
    speed: dict[str, Any] | None = None,
) -> str:
    """Render one run's per-benchmark results; judged benchmarks add a judge-failures column and judge lines; a
    run's speed record (summary["speed"]) adds its speed footer."""
    order = {c: i for i, c in enumerate(CATEGORIES)}
    judged = any(_judge(r) for r in results)
    rows = []
    for r in sorted(results, key=lambda r: (order.get(r["category"], 99), r["benchmark"])):
        ci = "" if r["ci_low"] is None else f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
        details = r.get("details") or {}
        failures = details.get("extraction_failures", 0)
        failed = f"{100 * failures / details['n_samples']:.0f}%" if details.get("n_samples") else ""
        row = [r["category"], r["benchmark"], r["metric"], r["n"], _score_cell(r), ci, failed, details.get("errors", 0)]
        if judged:
            row.append(f"{details['judge_failures']}/{details['n_judgments']}" if _judge(r) else "")
        rows.append(row)
    counted = averaged(r["benchmark"] for r in results)
    avg = average([r["score"] for r in results if r["score"] is not None and r["benchmark"] in counted])
    if avg is not None:
        rows.append(["", "average (plain mean)", "", "", f"{avg:.2f}", ""])
    unaveraged = sorted(r["benchmark"] for r in results if r["benchmark"] not in counted)
    table = tabulate(rows, headers=(*HEADERS, JUDGE_HEADER) if judged else HEADERS, tablefmt=fmt)
    notes = judge_notes(results)
    if unaveraged:
        notes.append(f"not in the average: {', '.join(unaveraged)} (a second scoring of answers counted already)")
    footer = "\n\n" + speed_footer(speed, fmt) if speed else ""
    return table + ("\n\n" + "\n".join(notes) if notes else "") + footer


SPEED_HEADERS = ("benchmark", "generated", "prompt tok", "completion tok", "seconds", "tok/s")


def _speed_row(label: str, tally: dict[str, Any]) -> list[Any]:
    rate = tally.get("tokens_per_s")
    return [
        label,
        tally["samples"],
        f"{tally['prompt_tokens']:,}",
        f"{tally['completion_tokens']:,}",
        f"{tally['seconds']:.1f}",
        "" if rate is None else f"{rate:.1f}",
    ]


def speed_footer(speed: dict[str, Any], fmt: str = "simple") -> str:
    """A run's speed: wall time by stage, tokens and tokens/s per benchmark and for the backend (generation
    seconds of a batch shared by benchmarks are split by their completion tokens), and on CPU at float32 what
    bounds decoding."""
    stages = speed.get("stages_s", {})
    backend = speed["backend"]
    engine = ", ".join(str(backend[k]) for k in ("device", "dtype") if backend.get(k))
    if backend.get("batch_size"):
        engine += f", batch {backend['batch_size']}"
    parts = []
    for key, label in _STAGES:
        if stages.get(key):
            loaded = backend.get("load_s") if key == "generate" else None
            parts.append(f"{label} {stages[key]:.1f} s" + (f" (weights load {loaded:.1f} s of it)" if loaded else ""))
    lines = [f"speed: wall {speed['wall_s']:.1f} s" + (f" ({', '.join(parts)})" if parts else "")]
    judge = speed.get("judge")
    if judge:
        rate = f", {judge['tokens_per_s']:.1f} tok/s" if judge.get("tokens_per_s") else ""
        lines.append(
            f"judged {judge['samples']} answers: {judge['prompt_tokens']:,} prompt + {judge['completion_tokens']:,} "
            f"completion judge tokens in {judge['seconds']:.1f} s{rate}"
        )
    cached = speed.get("cached", 0)
    if not backend["samples"]:
        lines.append(f"nothing generated: {cached} samples from the cache")
        return "\n".join(lines)
    lines.append(
        f"generated {backend['samples']} samples ({cached} from the cache) with {backend['name']} ({engine}); "
        "benchmarks sharing a batch split its seconds by their completion tokens"
    )
    decode_s = backend.get("generate_s", 0.0) - backend.get("prefill_s", 0.0)
    if backend.get("prefill_s") and decode_s > 0:
        lines.append(
            f"prompts (prefill) {backend['prefill_s']:.1f} s, decoding {decode_s:.1f} s: "
            f"{backend['completion_tokens'] / decode_s:.1f} tok/s while decoding"
        )
    rows = [_speed_row(name, tally) for name, tally in speed["benchmarks"].items()]
    rows.append(_speed_row(f"all ({backend['name']})", backend))
    align = ("left", *["right"] * (len(SPEED_HEADERS) - 1))
    lines.append(tabulate(rows, headers=SPEED_HEADERS, tablefmt=fmt, disable_numparse=True, colalign=align))
    note = memory_bound_note(backend)
    return "\n".join(lines + ([note] if note else []))


MEMORY_BOUND_ROWS = 16  # the profile: a 0.5B model's step took as long at batch 3 as at 16
_STAGES = (("model_prepare", "model prepared"), ("generate", "generation"), ("judge", "judging"), ("score", "scoring"))


def memory_bound_note(backend: dict[str, Any]) -> str | None:
    """On CPU at float32: one line on what bounds decoding and what --dtype bfloat16 trades for speed. A step does
    2 FLOPs per 4-byte weight per row: up to MEMORY_BOUND_ROWS rows a CPU computes that faster than it reads the
    weights from memory, so the step's time is the weights' read time and a bigger batch is nearly free."""
    steps, weights = backend.get("decode_steps"), backend.get("weights_bytes")
    if not str(backend.get("device", "")).startswith("cpu") or backend.get("dtype") != "float32":
        return None
    decode_s = backend.get("generate_s", 0.0) - backend.get("prefill_s", 0.0)
    if not steps or not weights or decode_s <= 0:
        return None
    rows = backend["decode_rows"] / steps
    rate = weights * steps / decode_s / 1e9
    read = f"each of {steps:,} decode steps read all {weights / 1e9:.2f} GB of weights"
    read += f" for {rows:.1f} rows ({rate:.1f} GB/s)"
    bound = (
        "memory-bound: a bigger batch costs little more per step"
        if rows <= MEMORY_BOUND_ROWS
        else "batches large enough for arithmetic to count too"
    )
    return (
        f"CPU float32: {read}, {bound}; --dtype bfloat16 halves the bytes (about 2x faster on AMX CPUs) but greedy "
        "outputs then depend on the batch a prompt ran in (README: Precision)"
    )


def judge_notes(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per judged benchmark: the judge (model, prompt version, baseline), failures, tokens and cost."""
    lines = []
    for r in sorted(results, key=lambda r: r["benchmark"]):
        judge = _judge(r)
        if not judge:
            continue
        details = r["details"]
        usage = details.get("judge_usage") or {}
        cost = usage.get("cost_usd")
        cost_text = "unknown (no price for this judge)" if cost == "unknown" else f"${cost:.4f}"
        baseline = f", baseline {judge['baseline']}" if judge.get("baseline") else ""
        lines.append(
            f"{r['benchmark']}: judged by {judge['model']} ({judge['backend']}), prompt {judge['prompt_version']}"
            f"{baseline}; judge failures {details['judge_failures']} of {details['n_judgments']} judgments"
            f" (never scored as wins or losses); judge tokens {usage.get('prompt_tokens', 0)} in / "
            f"{usage.get('completion_tokens', 0)} out, estimated cost {cost_text}"
        )
    return lines


def breakdown_table(results: Sequence[dict[str, Any]], fmt: str = "simple") -> str:
    """Per-group scores (e.g. MMLU-Pro categories) of the benchmarks that have a breakdown."""
    rows = [
        [r["benchmark"], group, v["n"], f"{v['score']:.2f}"]
        for r in results
        for group, v in ((r.get("details") or {}).get("breakdown") or {}).items()
    ]
    return tabulate(rows, headers=("benchmark", "group", "n", "score"), tablefmt=fmt) if rows else ""
