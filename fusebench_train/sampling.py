"""Stages 1 and 2: sample responses from every source model, then score them.

Sampling appends each completion to a JSONL journal as it arrives, so a crash or kill loses at most the
batch in flight; a rerun with the same inputs generates only the (source, prompt) pairs still missing.
"""

from __future__ import annotations

import gc
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fusebench.backends.base import Backend, GenParams
from fusebench.scorers.base import ScoreInput, get_scorer
from fusebench_train.config import VERIFIABLE, FuseConfig, SourceModel
from fusebench_train.prompts import TrainPrompt
from fusebench_train.select import Scored

MakeBackend = Callable[[SourceModel], Backend]


def default_backend(cfg: FuseConfig) -> MakeBackend:
    """Build fusebench's HF backend for a source model."""

    def make(source: SourceModel) -> Backend:
        from fusebench.backends import BackendOptions, make_backend

        s = cfg.sample
        return make_backend("hf", source.model, BackendOptions(batch_size=s.batch_size, dtype=s.dtype, device=s.device))

    return make


def _read_journal(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a kill: it and anything after are regenerated
    return rows


def sample(
    cfg: FuseConfig,
    prompts: Sequence[TrainPrompt],
    journal: Path,
    make_backend: MakeBackend,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Responses of every source to every prompt (samples_per_prompt[domain] each); resumes from `journal`.
    A progress bar per source shows responses/s and the ETA."""
    rows = _read_journal(journal)
    journal.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")  # drop a torn last line
    have: dict[tuple[str, str], set[int]] = defaultdict(set)
    for r in rows:
        have[(r["source"], r["prompt_id"])].add(r["index"])
    s = cfg.sample
    for source in cfg.sources:
        todo: dict[str, list[TrainPrompt]] = defaultdict(list)
        for p in prompts:
            k = s.samples_per_prompt[p.domain]
            if not set(range(k)) <= have[(source.name, p.id)]:
                todo[p.domain].append(p)
        if not todo:
            continue
        backend = make_backend(source)
        total = sum(s.samples_per_prompt[d] * len(g) for d, g in todo.items())
        bar = tqdm(total=total, desc=f"sample {source.name}", unit="response", disable=not progress)
        with bar, journal.open("a", encoding="utf-8") as out:
            for domain, group in todo.items():
                k = s.samples_per_prompt[domain]
                params = GenParams(
                    max_new_tokens=s.max_new_tokens,
                    temperature=source.temperature if source.temperature is not None else s.temperature,
                    top_p=s.top_p,
                    n=k,
                    seed=cfg.seed,
                )
                for c in backend.generate([p.messages for p in group], params):
                    p = group[c.index]
                    j = int(c.meta.get("sample", 0))
                    if j in have[(source.name, p.id)]:
                        continue
                    row = {
                        "prompt_id": p.id,
                        "domain": p.domain,
                        "source": source.name,
                        "index": j,
                        "text": c.text,
                        "n_tokens": c.completion_tokens,
                        "finish_reason": c.finish_reason,
                    }
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    bar.update(1)
                    have[(source.name, p.id)].add(j)
                    rows.append(row)
        del backend
        gc.collect()
    return sorted(rows, key=lambda r: (r["prompt_id"], r["source"], r["index"]))


def score(cfg: FuseConfig, prompts: Sequence[TrainPrompt], rows: Sequence[dict[str, Any]]) -> list[Scored]:
    """Verifiable prompts: 1.0/0.0 from the prompt set's fusebench scorer; open-ended: the reward model."""
    by_id = {p.id: p for p in prompts}
    scored: list[Scored | None] = [None] * len(rows)
    open_ended = []
    for i, r in enumerate(rows):
        p = by_id[r["prompt_id"]]
        if p.domain in VERIFIABLE:
            assert p.scorer is not None
            value = get_scorer(p.scorer)(ScoreInput(output=r["text"], target=p.target, item=p.item)).value
            scored[i] = _scored(r, float(value), value >= 1.0)
        else:
            open_ended.append(i)
    if open_ended:
        from fusebench_train.reward import RewardModel

        sc = cfg.score
        assert sc.reward_model is not None
        rm = RewardModel(
            str(cfg.resolve_path(sc.reward_model)) if cfg.resolve_path(sc.reward_model).exists() else sc.reward_model,
            device=sc.device,
            max_length=sc.max_length,
            trust_remote_code=sc.trust_remote_code,
        )
        rewards = rm.score([(by_id[rows[i]["prompt_id"]].messages, rows[i]["text"]) for i in open_ended], sc.batch_size)
        for i, value in zip(open_ended, rewards, strict=True):
            scored[i] = _scored(rows[i], value, None)
    return [s for s in scored if s is not None]


def _scored(row: dict[str, Any], value: float, correct: bool | None) -> Scored:
    return Scored(
        prompt_id=row["prompt_id"],
        domain=row["domain"],
        source=row["source"],
        index=int(row["index"]),
        text=row["text"],
        score=value,
        correct=correct,
        n_tokens=int(row["n_tokens"]),
    )
