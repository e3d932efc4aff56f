"""The judge-mode protocol: what one kind of judged benchmark does, in one object.

A judge mode builds the judgments a benchmark needs (`tasks`), reads a verdict from the judge's answer(s) (`parse`),
says what the second attempt at an unparsable answer sends (`retry`), asks for the logprobs it reads (`logprobs`),
aggregates the verdicts with its reference formula (`aggregate`, optionally `breakdown`) and owns the scale of its
scores (`scale`). Modes are looked up by name in fusebench.judging.modes.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusebench.backends.base import Conversation
from fusebench.data import Item, read_rows, resolve_data_path
from fusebench.errors import UsageError
from fusebench.judging.verdicts import Verdict
from fusebench.scale import PROPORTION, Scale
from fusebench.spec import BenchmarkSpec, JudgeSpec


@dataclass(frozen=True)
class JudgeTask:
    """One judgment to obtain: one item's output(s) in one slot (Arena-Hard game 1/2, MT-Bench turn 1/2)."""

    benchmark: str
    sample_id: str
    slot: int
    conversation: Conversation
    judged: dict[str, Any]  # the judged outputs in the order shown: part of the cache key
    context: dict[str, Any] = field(default_factory=dict)  # what parsing and aggregation need
    preset: Verdict | None = None  # decided without a judge (AlpacaEval: identical outputs tie at 1.5)


Judged = dict[str, dict[int, tuple[Any, JudgeTask]]]  # item -> slot -> (verdict value, task), every verdict read


@dataclass(frozen=True)
class Aggregated:
    """A mode's aggregate: the score in display points (None when undefined), its 95% CI where the reference gives
    one, per-item scores (win share 0-1, or mean rating) and the reference formula's own figures."""

    score: float | None
    ci: tuple[float, float] | None
    items: dict[str, float]
    metrics: dict[str, Any]


class JudgeMode(ABC):
    """One kind of judged benchmark (see the module docstring). Defaults: a 0-100 scale, no logprobs, the retry asks
    the same conversation again, no breakdown."""

    scale: Scale = PROPORTION
    logprobs: int = 0  # top logprobs per token the judge must return (0: none)
    reference_outputs_file: str | None = None  # see reference_outputs

    @abstractmethod
    def tasks(self, spec: BenchmarkSpec, items: Sequence[Item], outputs: dict[str, list[str]]) -> list[JudgeTask]:
        """The judgments a benchmark needs: outputs maps item id -> the model's answer per turn (first sample)."""

    @abstractmethod
    def parse(self, task: JudgeTask, texts: Sequence[str], meta: dict[str, Any]) -> Verdict:
        """The verdict of a task's answer(s) so far: texts holds attempt 0 (and 1); meta is the last attempt's."""

    def retry(self, task: JudgeTask, first_answer: str) -> Conversation:
        """The conversation of the second attempt after an unparsable first answer."""
        return task.conversation

    @abstractmethod
    def aggregate(self, by_item: Judged) -> Aggregated:
        """The benchmark's score from every task's verdict value (None: a judge failure)."""

    def breakdown(self, rated: Sequence[tuple[JudgeTask, Verdict]]) -> dict[str, dict[str, float]] | None:
        """Per-group count and score from the parsed verdicts, or None."""
        return None

    def reference_outputs(self, model: str, answers: Sequence[tuple[str, str]]) -> list[dict[str, Any]] | None:
        """The model's (question, answer) pairs in the reference tool's own input format, written beside a run's
        samples as `<benchmark>_<reference_outputs_file>` so that the reference can score them too."""
        return None


def judge_of(spec: BenchmarkSpec) -> JudgeSpec:
    if spec.judge is None:
        raise UsageError(f"{spec.id} has no judge")
    return spec.judge


def turn_text(item: Item, spec: BenchmarkSpec, turn: int) -> str:
    """The user's text of turn `turn` (0-based): an entry of prompt.turns_field (string or {"content": ...})."""
    if not spec.prompt.turns_field:
        return item.input
    try:
        entry = item.row[spec.prompt.turns_field][turn]
    except (KeyError, IndexError, TypeError) as exc:
        raise UsageError(f"{spec.id} item {item.id}: no turn {turn + 1} in {spec.prompt.turns_field!r}") from exc
    return str(entry["content"] if isinstance(entry, dict) else entry)


def judge_data_root(judge: JudgeSpec) -> Path | None:
    """The local folder named by the spec's data_dir_env (AlignBench), or None when the spec has none."""
    if not judge.data_dir_env:
        return None
    value = os.environ.get(judge.data_dir_env)
    if not value or not Path(value).is_dir():
        raise UsageError(
            f"set {judge.data_dir_env} to a local copy of the benchmark's repository (its files carry no license, "
            "so fusebench does not ship them)"
        )
    return Path(value)


def judge_file(judge: JudgeSpec, name: str | None, what: str) -> Path:
    """A file the judge spec names (`what`: its field), under data_dir_env's folder or the spec folders."""
    if not name:
        raise UsageError(f"judge spec has no {what}")
    root = judge_data_root(judge)
    path = root / name if root else resolve_data_path(name, judge.folder)
    if not path.is_file():
        raise UsageError(f"judge {what} not found: {path}")
    return path


def answers_by_question(path: Path) -> dict[str, list[str]]:
    """FastChat / Arena-Hard answer files: question_id -> the turns of the first choice."""
    out = {}
    for row in read_rows(path):
        turns = row["choices"][0]["turns"]
        out[str(row["question_id"])] = [t["content"] if isinstance(t, dict) else str(t) for t in turns]
    return out
