"""A run's plan: the benchmarks with their items and generation params, and the requests (conversations, cache
keys) they make. evaluate builds a plan from the command line; a stored run's plan is rebuilt from its settings
(rescore, the report's exports) without loading any model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fusebench.backends.base import Conversation, GenParams
from fusebench.data import Item, LoadedData, load_items
from fusebench.errors import UsageError
from fusebench.judging.modes.base import judge_data_root, turn_text
from fusebench.keys import generation_key
from fusebench.prompts import build_conversation
from fusebench.spec import BenchmarkSpec, get_benchmark
from fusebench.store.records import RunSettings


@dataclass
class PlannedBenchmark:
    """One benchmark of a run: its spec, its items and the generation params they are asked with."""

    spec: BenchmarkSpec
    data: LoadedData
    params: GenParams
    params_by: dict[str, GenParams] = field(default_factory=dict)  # spec.generation_by: value -> params

    def params_for(self, item: Item) -> GenParams:
        """The item's generation params: its generation_by value's, else the benchmark's."""
        by = self.spec.generation_by
        return self.params_by.get(str(item.row.get(by.field)), self.params) if by else self.params


@dataclass
class Request:
    """One conversation to send to the model: an item's sample (and turn), keyed for the generation cache."""

    benchmark: str
    item: Item
    sample_index: int
    conversation: Conversation
    key: str
    params: GenParams
    turn: int = 0  # 0-based; multi-turn benchmarks generate turn t after every answer of turn t-1 is stored


def gen_params(benchmark: str, merged: dict[str, Any]) -> GenParams:
    """GenParams from merged spec, suite and command-line settings; a bad one is a UsageError naming the benchmark."""
    try:
        return GenParams(**{**merged, "stop": tuple(merged.get("stop", ()))})
    except (TypeError, ValueError) as exc:
        raise UsageError(f"bad generation parameters for {benchmark}: {exc}") from exc


def load_benchmark_items(spec: BenchmarkSpec, limit: int | None = None) -> LoadedData:
    """load_items, plus what judged benchmarks need: data from a user-provided folder (judge.data_dir_env, for
    AlignBench, whose files carry no license)."""
    if spec.judge and spec.judge.data_dir_env and spec.data.path:
        root = judge_data_root(spec.judge)
        assert root is not None
        found = [p for p in (root / "data" / spec.data.path, root / spec.data.path) if p.is_file()]
        if not found:
            raise UsageError(f"{spec.id}: {spec.data.path} not found in {root} (nor in {root / 'data'})")
        spec = replace(spec, data=replace(spec.data, path=str(found[0])))
    return load_items(spec, limit)


def _conversation(spec: BenchmarkSpec, item: Item, turn: int, history: Conversation | None) -> Conversation:
    """The prompt of `turn`: the spec's template for turn 0; later turns extend the previous turn's conversation
    (which ends with the model's own answer) with the next user message."""
    filled = replace(item, input=turn_text(item, spec, turn)) if spec.prompt.turns_field else item
    if history is None:
        return build_conversation(spec.prompt, filled)
    return [*history, *build_conversation(replace(spec.prompt, system=None), filled)]


def build_requests(
    planned: Sequence[PlannedBenchmark],
    fingerprint: dict[str, Any],
    turn: int = 0,
    history: dict[tuple[str, str, int], Conversation] | None = None,
) -> list[Request]:
    """Requests of one turn; for turn > 0, `history` maps (benchmark, item, sample) to the conversation so far."""
    requests = []
    for p in planned:
        if p.spec.turns <= turn:
            continue
        for item in p.data.items:
            item_params = p.params_for(item)
            params = item_params.to_dict()
            if p.spec.turns > 1:
                params = {**params, "turn": turn}
            for j in range(item_params.n):
                if history is not None and (p.spec.id, item.id, j) not in history:
                    continue  # its previous turn has no answer (a failed request): nothing to build on
                previous = history[(p.spec.id, item.id, j)] if history is not None else None
                conv = _conversation(p.spec, item, turn, previous)
                key = generation_key(
                    model_fingerprint=fingerprint,
                    benchmark=p.spec.generation_id,
                    benchmark_version=p.spec.version,
                    sample_id=item.id,
                    sample_index=j,
                    prompt=conv,
                    gen_params=params,
                )
                requests.append(Request(p.spec.id, item, j, conv, key, item_params, turn))
    return requests


def plan_from_run(run: dict[str, Any]) -> list[PlannedBenchmark]:
    """Rebuild a stored run's plan (same items, same params) to rescore it without a model."""
    planned = []
    settings = RunSettings.from_json(run["settings"])
    for name in run["benchmarks"]:
        spec = get_benchmark(name)
        stored = settings.per_benchmark.get(name)
        if stored is None:  # imported from another tool: nothing of it to rebuild
            continue
        data = load_benchmark_items(spec, stored.n_items)
        params_by = {v: gen_params(name, p) for v, p in stored.params_by.items()}
        planned.append(PlannedBenchmark(spec, data, gen_params(name, stored.params), params_by))
    return planned
