"""The judge stage: judge stored contestant outputs through the store's cache, within an optional budget.

Every judgment is keyed like a generation (judge fingerprint, prompt version, the judged outputs and their order, the
rendered judge conversation, judge params, attempt) and stored in the store's judgments (with the item, slot and
attempt) as soon as it arrives; a rerun sends only what is missing. An answer that cannot be parsed gets one
more attempt (its own key: attempt 1; the conversation the judge mode's `retry` gives), then counts as a judge
failure: shown, never scored as a win or a loss. A transport error is not stored: the judgment stays missing and the
run incomplete, so that a rerun asks again. What is judged, how a verdict is read and which logprobs the judge returns
are the benchmark's judge mode's (fusebench.judging.modes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fusebench.backends.base import Backend, Completion, Conversation, GenParams
from fusebench.data import Item
from fusebench.errors import UsageError
from fusebench.judging.modes import get_mode
from fusebench.judging.modes.base import JudgeTask
from fusebench.judging.verdicts import Verdict
from fusebench.keys import stable_hash
from fusebench.progress import CountProgress
from fusebench.spec import BenchmarkSpec, JudgeSpec
from fusebench.speed import SpeedMeter
from fusebench.store import Store, to_jsonable

OPENAI_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class JudgeOptions:
    """Per-run judge settings (CLI flags); None falls back to each benchmark's judge spec."""

    model: str | None = None  # --judge: one judge for every judged benchmark
    backend: str = "openai"  # openai | hf
    base_url: str = OPENAI_URL
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = 16
    budget_usd: float | None = None
    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None
    max_tokens: int | None = None  # a cap on the spec's judge max_tokens (small local judges)

    def model_for(self, judge: JudgeSpec) -> str:
        return self.model or judge.model

    def prices(self, judge: JudgeSpec) -> tuple[float | None, float | None]:
        """USD per million input/output tokens: the flags, else the spec's when its own judge model is used."""
        own = self.model is None or self.model == judge.model
        pin = self.price_input_per_mtok if self.price_input_per_mtok is not None else None
        pout = self.price_output_per_mtok if self.price_output_per_mtok is not None else None
        if own:
            pin = judge.price_input_per_mtok if pin is None else pin
            pout = judge.price_output_per_mtok if pout is None else pout
        return pin, pout

    def params(self, judge: JudgeSpec) -> GenParams:
        max_tokens = min(judge.max_tokens, self.max_tokens) if self.max_tokens else judge.max_tokens
        logprobs = get_mode(judge.mode).logprobs
        return GenParams(max_new_tokens=max_tokens, temperature=judge.temperature, logprobs=logprobs)

    def describe(self, judge: JudgeSpec) -> dict[str, Any]:
        """The judge identity recorded with a run and compared across runs (no URL, no key)."""
        return {
            "model": self.model_for(judge),
            "backend": self.backend,
            "prompt_version": judge.prompt_version,
            "baseline": judge.baseline,
            "params": self.params(judge).to_dict(),
        }


def make_judge_backend(options: JudgeOptions, model: str) -> Backend:
    """The judge model behind the Backend protocol: an OpenAI-compatible API, or a local transformers model."""
    from fusebench.backends import BackendOptions, make_backend

    if options.backend == "openai":
        from fusebench.backends.openai import OpenAIBackend

        return OpenAIBackend(model, options.base_url, options.api_key_env, concurrency=options.concurrency)
    if options.backend == "hf":
        return make_backend("hf", model, BackendOptions())
    raise UsageError(f"unknown judge backend {options.backend!r}; use openai or hf")


# ---- what to judge ---------------------------------------------------------------------------------------------


def build_tasks(spec: BenchmarkSpec, items: Sequence[Item], outputs: dict[str, list[str]]) -> list[JudgeTask]:
    """The judgments a benchmark needs, as its judge mode builds them: outputs maps item id -> the model's answer
    per turn (first sample)."""
    assert spec.judge is not None
    return get_mode(spec.judge.mode).tasks(spec, items, outputs)


# ---- running ---------------------------------------------------------------------------------------------------


@dataclass
class Judgment:
    """The outcome of one task: its verdict (None while unjudged) and the stored answers it came from."""

    task: JudgeTask
    verdict: Verdict | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


def row_cost(row: dict[str, Any], prices: tuple[float | None, float | None]) -> float | None:
    """Estimated USD of one stored judgment; None when a price is unknown."""
    pin, pout = prices
    if pin is None or pout is None:
        return None
    return (pin * int(row.get("prompt_tokens") or 0) + pout * int(row.get("completion_tokens") or 0)) / 1e6


@dataclass
class JudgeUsage:
    """Tokens and estimated cost of the judgments a run uses (stored earlier or sent now)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    answers: int = 0  # stored judge answers used (first attempts and retries)
    sent: int = 0  # requests sent in this invocation
    errors: int = 0  # transport errors in this invocation (not stored)
    cost_usd: float | None = 0.0  # None: a price is unknown

    def add(self, row: dict[str, Any], cost: float | None) -> None:
        self.prompt_tokens += int(row.get("prompt_tokens") or 0)
        self.completion_tokens += int(row.get("completion_tokens") or 0)
        self.answers += 1
        self.cost_usd = None if self.cost_usd is None or cost is None else self.cost_usd + cost

    def to_dict(self) -> dict[str, Any]:
        cost = "unknown" if self.cost_usd is None else round(self.cost_usd, 6)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "judge_answers": self.answers,
            "requests_sent": self.sent,
            "transport_errors": self.errors,
            "cost_usd": cost,
        }


@dataclass
class BenchmarkJudgments:
    """A benchmark's judgments after the stage ran."""

    spec: BenchmarkSpec
    judge: dict[str, Any]
    judgments: list[Judgment]
    usage: JudgeUsage

    @property
    def missing(self) -> int:
        return sum(j.verdict is None for j in self.judgments)

    @property
    def failures(self) -> int:
        return sum(j.verdict is not None and not j.verdict.ok for j in self.judgments)

    def methods(self) -> dict[str, int]:
        return dict(Counter(j.verdict.method for j in self.judgments if j.verdict is not None))


class JudgeStage:
    """Judges benchmarks one after another, sharing judge backends, the budget and the store's writer."""

    def __init__(
        self,
        store: Store,
        options: JudgeOptions,
        make_backend: Callable[[str], Backend] | None,
        progress: bool = False,
        recorded: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """make_backend None: judgments come from the store only (rescore), with the judges `recorded` by the run."""
        self.store = store
        self.recorded = recorded or {}
        self.options = options
        self.make_backend = make_backend
        self.progress = progress
        self.spent_usd = 0.0
        self.budget_hit = False
        self._backends: dict[str, Backend] = {}
        self.speed = SpeedMeter()  # the judge calls made: tokens and seconds per judged benchmark

    def backend(self, model: str) -> Backend:
        if model not in self._backends:
            if self.make_backend is None:
                raise UsageError("no judge backend")
            self._backends[model] = self.make_backend(model)
        return self._backends[model]

    def describe(self, spec: BenchmarkSpec) -> dict[str, Any]:
        """The judge's identity for this run (as recorded, when rescoring), its model named as its backend names it."""
        if spec.id in self.recorded:
            return self.recorded[spec.id]
        assert spec.judge is not None
        described = self.options.describe(spec.judge)
        if self.make_backend is not None:
            described["model"] = self.backend(described["model"]).fingerprint().get("model", described["model"])
        return described

    def check_budget(self, specs: Iterable[BenchmarkSpec]) -> None:
        """A budget needs prices for every judge: fail before any model runs."""
        if self.options.budget_usd is None:
            return
        for spec in specs:
            assert spec.judge is not None
            if None in self.options.prices(spec.judge):
                raise UsageError(
                    f"--judge-budget-usd needs the judge's prices for {spec.id}: pass --judge-price-input and "
                    "--judge-price-output (USD per million tokens)"
                )

    def judge(self, spec: BenchmarkSpec, tasks: Sequence[JudgeTask], fingerprint: dict[str, Any]) -> BenchmarkJudgments:
        """Look every task up in the store, send the missing ones (within budget), retry unparsable ones once."""
        judge = spec.judge
        assert judge is not None
        params = self.options.params(judge)
        prices = self.options.prices(judge)
        usage = JudgeUsage(cost_usd=0.0)
        judgments = [Judgment(t, t.preset) for t in tasks]
        mode = get_mode(judge.mode)
        # attempt 0, then attempt 1 for the unparsable ones
        pending = [(j, j.task.conversation) for j in judgments if j.verdict is None]
        for attempt in (0, 1):
            keyed = [(j, conv, self._key(spec, j.task, conv, params, attempt, fingerprint)) for j, conv in pending]
            stored = self.store.get_judgments(k for _, _, k in keyed)
            for _, _, key in keyed:
                if key in stored:
                    self._count(usage, stored[key], prices)
            missing = [(j, conv, key) for j, conv, key in keyed if key not in stored]
            if missing and self.make_backend is not None:
                stored |= self._send(spec, missing, params, attempt, usage, prices)
            pending = []
            for j, _, key in keyed:
                if key not in stored:
                    continue  # unjudged: budget, transport error, or no backend
                j.rows.append(stored[key])
                verdict = mode.parse(j.task, [r["output"] for r in j.rows], stored[key].get("meta") or {})
                j.verdict = verdict
                if attempt == 0 and not verdict.ok and verdict.retry:
                    j.verdict = None  # the second attempt decides
                    pending.append((j, mode.retry(j.task, stored[key]["output"])))
        return BenchmarkJudgments(spec, self.describe(spec), judgments, usage)

    def _key(
        self,
        spec: BenchmarkSpec,
        task: JudgeTask,
        conv: Conversation,
        params: GenParams,
        attempt: int,
        fingerprint: dict[str, Any],
    ) -> str:
        assert spec.judge is not None
        return stable_hash(
            {
                "judge": fingerprint,
                "prompt_version": spec.judge.prompt_version,
                "benchmark": [spec.id, spec.version],
                "sample": [task.sample_id, task.slot],
                "judged": task.judged,
                "conversation": conv,
                "params": params.to_dict(),
                "attempt": attempt,
            }
        )

    def _count(self, usage: JudgeUsage, row: dict[str, Any], prices: tuple[float | None, float | None]) -> None:
        cost = row_cost(row, prices)
        usage.add(row, cost)
        self.spent_usd += cost or 0.0

    def _send(
        self,
        spec: BenchmarkSpec,
        missing: list[tuple[Judgment, Conversation, str]],
        params: GenParams,
        attempt: int,
        usage: JudgeUsage,
        prices: tuple[float | None, float | None],
    ) -> dict[str, dict[str, Any]]:
        from fusebench.generation_writer import GenerationWriter

        assert spec.judge is not None
        backend = self.backend(self.options.model_for(spec.judge))
        budget = self.options.budget_usd
        chunk = self.options.concurrency if budget is not None else len(missing)
        writer = GenerationWriter(self.store, judgments=True)
        done: dict[str, dict[str, Any]] = {}
        bar = CountProgress(len(missing), f"judge:{spec.id}", "judgment", self.progress)
        try:
            for start in range(0, len(missing), chunk):
                if budget is not None and self.spent_usd >= budget:
                    self.budget_hit = True
                    break
                part = missing[start : start + chunk]
                with self.speed.call():
                    for completion in backend.generate([conv for _, conv, _ in part], params, bar.on_tokens):
                        usage.sent += 1
                        bar.advance()
                        if completion.finish_reason == "error":
                            usage.errors += 1
                            continue
                        self.speed.add(spec.id, completion)
                        j, conv, key = part[completion.index]
                        row = _judgment_row(spec, j.task, conv, key, attempt, completion)
                        writer.add(row)
                        done[key] = row
                        self._count(usage, row, prices)
        finally:
            writer.flush()
            bar.close()
        return done


def _judgment_row(
    spec: BenchmarkSpec, task: JudgeTask, conv: Conversation, key: str, attempt: int, completion: Completion
) -> dict[str, Any]:
    return {
        "key": key,
        "benchmark": spec.id,
        "sample_id": task.sample_id,
        "slot": task.slot,
        "attempt": attempt,
        "prompt": conv,
        "output": completion.text,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "finish_reason": completion.finish_reason,
        "latency_s": completion.latency_s,
        "meta": to_jsonable({**completion.meta, "slot": task.slot, "attempt": attempt}),
    }
