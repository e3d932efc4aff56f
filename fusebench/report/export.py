"""Files written for every run: results JSON, a markdown table, and per-benchmark sample JSONL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fusebench.report.table import results_table
from fusebench.store import RunSettings, RunSummary, Store


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def export_run(store: Store, run_id: str, output_dir: Path) -> Path:
    """Write runs/<id>/{results.json, results.md, samples/<benchmark>.jsonl}; returns the run folder."""
    run = store.get_run(run_id)
    results = store.get_benchmark_results(run["id"])
    folder = output_dir / "runs" / run["id"]
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    payload = {"run": run, "results": results}
    _atomic_write(folder / "results.json", json.dumps(payload, indent=2, default=_json_default))
    table = results_table(results, fmt="github", speed=RunSummary.from_json(run["summary"]).speed)
    _atomic_write(folder / "results.md", f"# fusebench run {run['id']}\n\nmodel: `{run['model']}`\n\n{table}\n")
    scores = store.get_scores(run["id"])
    generations = store.get_generations(s["generation_key"] for s in scores)
    by_bench: dict[str, list[str]] = {}
    for s in sorted(scores, key=lambda s: (s["benchmark"], s["sample_id"], s["sample_index"])):
        gen = generations[s["generation_key"]]
        line = {
            "sample_id": s["sample_id"],
            "sample_index": s["sample_index"],
            "prompt": gen["prompt"],
            "output": gen["output"],
            "extracted": s["extracted"],
            "target": s["target"],
            "score": s["score"],
            "reason": s["reason"],
            "prompt_tokens": gen["prompt_tokens"],
            "completion_tokens": gen["completion_tokens"],
            "finish_reason": gen["finish_reason"],
            "latency_s": gen["latency_s"],
        }
        by_bench.setdefault(s["benchmark"], []).append(json.dumps(line, ensure_ascii=False))
    for bench, lines in by_bench.items():
        _atomic_write(folder / "samples" / f"{bench}.jsonl", "\n".join(lines) + "\n")
    _export_reference_outputs(store, run, folder)
    return folder


def _export_reference_outputs(store: Store, run: dict[str, Any], folder: Path) -> None:
    """Judged benchmarks whose judge mode has a reference input file (AlpacaEval's model_outputs.json): the run's
    answers in it, beside the samples, so that the reference scores them too (`alpaca_eval --model_outputs
    runs/<id>/<benchmark>_model_outputs.json`)."""
    from fusebench.judging.modes import get_mode
    from fusebench.plan import build_requests, plan_from_run
    from fusebench.spec import all_benchmarks

    specs = all_benchmarks()
    native = RunSettings.from_json(run["settings"]).per_benchmark
    modes = {b: get_mode(j.mode) for b in run["benchmarks"] if b in native and b in specs and (j := specs[b].judge)}
    files = {b: m.reference_outputs_file for b, m in modes.items() if m.reference_outputs_file}
    if not files:
        return
    requests = build_requests(plan_from_run({**run, "benchmarks": list(files)}), run["model_fingerprint"])
    generations = store.get_generations(r.key for r in requests)
    for bench, name in files.items():
        firsts = [r for r in requests if r.benchmark == bench and r.sample_index == 0 and r.key in generations]
        records = modes[bench].reference_outputs(
            run["model"], [(r.item.input, generations[r.key]["output"]) for r in firsts]
        )
        _atomic_write(folder / f"{bench}_{name}", json.dumps(records, indent=2, ensure_ascii=False))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
