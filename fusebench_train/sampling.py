"""Stages 1 and 2: sample responses from every source model, then score them.

Sampling appends each completion to a JSONL journal as it arrives, so a crash or kill loses at most the
batch in flight. Each response carries the key of what produced it (`response_keys`), so a rerun, after a kill or
after a change of the config, generates only the responses missing or whose key changed.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fusebench.backends.base import Backend, GenParams, release
from fusebench.errors import UsageError
from fusebench.keys import stable_hash
from fusebench.scorers.base import ScoreInput, get_scorer, lookup
from fusebench_train.config import VERIFIABLE, FuseConfig, SourceModel
from fusebench_train.prompts import TrainPrompt
from fusebench_train.select import Scored
from fusebench_train.venv import run_in_venv

MakeBackend = Callable[[SourceModel], Backend]


def quiet_bars() -> bool:
    """TQDM_DISABLE=1 silences the bars (tests, logs), as it does the trainers'."""
    return os.environ.get("TQDM_DISABLE") == "1"


def default_backend(cfg: FuseConfig, name: str = "hf") -> MakeBackend:
    """Build fusebench's `name` backend ("hf" or "vllm") for a source model."""

    def make(source: SourceModel) -> Backend:
        from fusebench.backends import BackendOptions, make_backend

        s = cfg.sample
        options = BackendOptions(
            batch_size=s.batch_size,
            dtype=s.dtype,
            device=s.device,
            data_parallel_size=s.data_parallel_size,
            tensor_parallel_size=s.tensor_parallel_size,
        )
        return make_backend(name, source.model, options)

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


# settings of the sample section that cannot change a response (samples_per_prompt: in the params' n)
_NOT_IN_KEY = ("samples_per_prompt", "batch_size", "data_parallel_size", "tensor_parallel_size")


def source_params(cfg: FuseConfig, source: SourceModel, domain: str) -> GenParams:
    """Sampling parameters of one source for one domain's prompts."""
    s = cfg.sample
    return GenParams(
        max_new_tokens=s.max_new_tokens,
        temperature=source.temperature if source.temperature is not None else s.temperature,
        top_p=s.top_p,
        n=s.samples_per_prompt[domain],
        seed=cfg.seed,
    )


def response_keys(cfg: FuseConfig, prompts: Sequence[TrainPrompt]) -> dict[tuple[str, str], str]:
    """Per (source name, prompt id), the key of what produces its responses: the source, the conversation sent,
    the generation parameters and the sample settings that can change a response."""
    settings = {k: v for k, v in dataclasses.asdict(cfg.sample).items() if k not in _NOT_IN_KEY}
    keys = {}
    for source in cfg.sources:
        params = {d: dataclasses.asdict(source_params(cfg, source, d)) for d in {p.domain for p in prompts}}
        for p in prompts:
            keys[(source.name, p.id)] = stable_hash({
                "source": dataclasses.asdict(source),
                "conversation": p.conversation(),
                "params": params[p.domain],
                "settings": settings,
            })  # fmt: skip
    return keys


def keyed_journal(path: Path) -> bool:
    """Whether every response in the journal carries its key (journals of earlier releases do not)."""
    rows = _read_journal(path)
    return bool(rows) and all("key" in r for r in rows)


def sample(
    cfg: FuseConfig,
    prompts: Sequence[TrainPrompt],
    journal: Path,
    make_backend: MakeBackend,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Responses of every source to every prompt (samples_per_prompt[domain] each); resumes from `journal`,
    keeping the responses whose key is still that of their source and prompt (one without a key, from an earlier
    release's journal, is kept: the pipeline leaves those only to resume the same inputs).
    A progress bar per source shows responses/s and the ETA."""
    wanted = response_keys(cfg, prompts)
    read = _read_journal(journal)
    rows = [
        r
        for r in read
        if r.get("key", wanted.get((r["source"], r["prompt_id"]))) == wanted.get((r["source"], r["prompt_id"]))
    ]
    if len(rows) < len(read):
        print(f"[sample] {len(read) - len(rows)} of {len(read)} journal responses are sampled again: their source, "
              "prompt or sampling settings changed", file=sys.stderr, flush=True)  # fmt: skip
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
        bar = tqdm(total=total, desc=f"sample {source.name}", unit="response", disable=not progress or quiet_bars())
        with bar, journal.open("a", encoding="utf-8") as out:
            for domain, group in todo.items():
                params = source_params(cfg, source, domain)
                for c in backend.generate([p.conversation() for p in group], params):
                    p = group[c.index]
                    j = int(c.meta.get("sample", 0))
                    if j in have[(source.name, p.id)]:
                        continue
                    row = {
                        "key": wanted[(source.name, p.id)],
                        "prompt_id": p.id,
                        "domain": p.domain,
                        "source": source.name,
                        "index": j,
                        "text": p.response(c.text),
                        "n_tokens": c.completion_tokens,
                        "finish_reason": c.finish_reason,
                    }
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                    bar.update(1)
                    have[(source.name, p.id)].add(j)
                    rows.append(row)
        release(backend)  # vLLM: its engine-core process ends here, not at exit, before the next source loads
        del backend
        gc.collect()
    return sorted(rows, key=lambda r: (r["prompt_id"], r["source"], r["index"]))


def sample_in_venv(cfg: FuseConfig, venv: Path, journal: Path) -> None:
    """Run `sample` with the vLLM backend in another venv's Python (`.venv-vllm`: vLLM pins its own torch); it
    appends to the same journal, so a kill and rerun resume as usual."""
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("sft", "dpo")}  # TRL's: not needed here
    payload = {"config": config, "base_dir": cfg.base_dir, "journal": str(journal)}
    run_in_venv(venv, "fusebench_train.sampling", payload, "sampling")


def _main() -> None:
    """Entry of `sample_in_venv`: the config and journal as JSON on stdin."""
    from fusebench_train.config import parse_config
    from fusebench_train.prompts import load_prompts

    payload = json.loads(sys.stdin.read())
    try:
        cfg = parse_config(payload["config"], payload["base_dir"], check_trl=False)  # .venv-vllm has no TRL
        sample(cfg, load_prompts(cfg), Path(payload["journal"]), default_backend(cfg, "vllm"))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def score(
    cfg: FuseConfig, prompts: Sequence[TrainPrompt], rows: Sequence[dict[str, Any]], progress: bool = True
) -> list[Scored]:
    """Verifiable prompts: 1.0/0.0 from the prompt set's fusebench scorer (sandboxed code runs in parallel threads,
    as fusebench's own scoring does); open-ended: the reward model. A progress bar shows programs/answers checked."""
    by_id = {p.id: p for p in prompts}
    scored: list[Scored | None] = [None] * len(rows)
    verifiable = [i for i, r in enumerate(rows) if by_id[r["prompt_id"]].domain in VERIFIABLE]
    open_ended = [i for i, r in enumerate(rows) if by_id[r["prompt_id"]].domain not in VERIFIABLE]
    quiet = not progress or quiet_bars()
    bar = tqdm(total=len(verifiable), desc="score (checked answers)", unit="response", disable=quiet)

    def check(i: int) -> None:
        p = by_id[rows[i]["prompt_id"]]
        assert p.scorer is not None
        value = get_scorer(p.scorer)(ScoreInput(output=rows[i]["text"], target=p.target, item=p.item)).value
        scored[i] = _scored(rows[i], float(value), value >= 1.0)
        bar.update(1)

    with bar:
        scorers = {by_id[rows[i]["prompt_id"]].scorer for i in verifiable}
        parallel_scorers = {s for s in scorers if s is not None and lookup(s).parallel}
        parallel = [i for i in verifiable if by_id[rows[i]["prompt_id"]].scorer in parallel_scorers]
        with ThreadPoolExecutor() as pool:
            list(pool.map(check, parallel))
        for i in verifiable:
            if scored[i] is None:
                check(i)
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


if __name__ == "__main__":  # vLLM starts its engine with multiprocessing spawn: the guard is needed
    _main()
