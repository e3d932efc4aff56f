"""Tuning on the validation prompts (carved from the training sources), never on the held-out suite.

`fusebench fuse validate CONFIG` answers every validation prompt greedily with base, SFT and fused models, checks
the answers with the prompt sets' scorers (as the score stage does), and compares SFT and fused against base per
domain: paired bootstrap 95% CI, McNemar p-value, Holm across domains (fusebench.stats). Answers are journaled per
model (keyed by the model's artifact hash and the prompts), so a rerun after retraining only answers again for the
changed models.
"""

from __future__ import annotations

import gc
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fusebench.backends.base import Backend, GenParams
from fusebench.errors import UsageError
from fusebench.keys import stable_hash
from fusebench.stats import Interval, holm, paired_delta_ci, paired_test
from fusebench_train.config import FuseConfig
from fusebench_train.gains import ci_text, interval
from fusebench_train.prompts import TrainPrompt, load_prompt_sets
from fusebench_train.sampling import quiet_bars, score


def _answers(
    prompts: Sequence[TrainPrompt], make: Callable[[], Backend], params: GenParams, journal: Path
) -> dict[str, str]:
    """prompt id -> greedy answer; answers already in `journal` are not asked again (nor is the model loaded)."""
    done: dict[str, str] = {}
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break  # cut short by a kill
            done[row["prompt_id"]] = row["text"]
    todo = [p for p in prompts if p.id not in done]
    if todo:
        backend = make()
        with (
            journal.open("a", encoding="utf-8") as out,
            tqdm(total=len(todo), desc=journal.stem, unit="prompt", disable=quiet_bars()) as bar,
        ):
            for c in backend.generate([p.conversation() for p in todo], params):
                p = todo[c.index]
                done[p.id] = p.response(c.text)
                out.write(json.dumps({"prompt_id": p.id, "text": done[p.id]}) + "\n")
                out.flush()
                bar.update(1)
    return done


def validate(
    cfg: FuseConfig,
    models: Mapping[str, tuple[str, str]],
    folder: Path,
    make_backend: Callable[[str], Backend],
) -> dict[str, Any]:
    """`models`: stage -> (model spec, identity hash); must include "base". Returns per domain the accuracy of each
    stage and each non-base stage's paired delta over base (points, 95% CI, p, Holm-adjusted p across domains)."""
    prompts = load_prompt_sets(cfg, cfg.validation)
    if not prompts:
        raise UsageError("validate: the config has no validation prompt sets")
    folder.mkdir(parents=True, exist_ok=True)
    params = GenParams(max_new_tokens=cfg.eval.max_new_tokens or cfg.sample.max_new_tokens, seed=cfg.eval.seed)
    per_stage: dict[str, dict[str, float]] = {}
    asked = [[p.id, p.conversation()] for p in prompts]  # changed prompts (template, system, prefill): asked again
    for stage, (model, identity) in models.items():
        key = stable_hash({"model": identity, "params": params.to_dict(), "prompts": asked})
        journal = folder / f"{stage}-{key[:12]}.jsonl"
        answers = _answers(prompts, partial(make_backend, model), params, journal)
        gc.collect()
        rows = [
            {"prompt_id": p.id, "domain": p.domain, "source": stage, "index": 0, "text": answers[p.id], "n_tokens": 0}
            for p in prompts
        ]
        per_stage[stage] = {s.prompt_id: s.score for s in score(cfg, prompts, rows, progress=False)}
    by_domain: dict[str, list[str]] = defaultdict(list)
    for p in prompts:
        by_domain[p.domain].append(p.id)
    table: dict[str, Any] = {"models": {s: m for s, (m, _) in models.items()}, "rows": []}
    tests = []
    for domain, ids in by_domain.items():
        row: dict[str, Any] = {"domain": domain, "n": len(ids), "scores": {}, "delta": {}}
        base = [per_stage["base"][i] for i in ids]
        for stage, scores in per_stage.items():
            values = [scores[i] for i in ids]
            row["scores"][stage] = 100 * sum(values) / len(values)
            if stage != "base":
                ci = paired_delta_ci(base, values)
                points = Interval(100 * ci.estimate, 100 * ci.low, 100 * ci.high, ci.unavailable)
                test, pvalue = paired_test(base, values)
                row["delta"][stage] = {**interval(points), "test": test, "p": pvalue}
                tests.append(row["delta"][stage])
        table["rows"].append(row)
    for d, adjusted in zip(tests, holm([d["p"] for d in tests]) if tests else [], strict=True):
        d["p_holm"] = adjusted
    (folder / "validation.json").write_text(json.dumps(table, indent=2))
    return table


def format_validation(table: Mapping[str, Any]) -> str:
    """Accuracy per domain and stage, and each trained stage's delta over base with its Holm-adjusted p."""
    from tabulate import tabulate

    stages = list(table["models"])
    trained = [s for s in stages if s != "base"]
    body = []
    for r in table["rows"]:
        line = [f"val:{r['domain']}", r["n"], *(f"{r['scores'][s]:.1f}" for s in stages)]
        for s in trained:
            d = r["delta"][s]
            line.append(f"{d['estimate']:+.1f} {ci_text(d)} p={d['p_holm']:.3g}")
        body.append(line)
    headers = ["validation", "n", *stages, *(f"Δ {s} vs base [95% CI]" for s in trained)]
    return (
        tabulate(body, headers=headers, disable_numparse=True) + "\n(tune on these; the held-out suite is for the end)"
    )
