"""Arena-Hard v0.1: each question judged twice against a baseline's answer (both orders), Bradley-Terry win rate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fusebench.backends.base import Conversation
from fusebench.data import Item
from fusebench.errors import UsageError
from fusebench.judging import prompts
from fusebench.judging.modes.base import (
    Aggregated,
    Judged,
    JudgeMode,
    JudgeTask,
    answers_by_question,
    judge_file,
    judge_of,
    turn_text,
)
from fusebench.judging.verdicts import Verdict, parse_pairwise
from fusebench.spec import BenchmarkSpec


def win_share(label: str, model_is_b: bool) -> float:
    """A pairwise verdict from the model's side: 1 win, 0.5 tie, 0 loss (strength ignored)."""
    if label == "A=B":
        return 0.5
    return 1.0 if label.startswith("B") == model_is_b else 0.0


class Pairwise(JudgeMode):
    """Game 1 shows the baseline as assistant A, game 2 swaps the answers; a missing label is asked for again with
    Arena-Hard's continuation prompt."""

    def tasks(self, spec: BenchmarkSpec, items: Sequence[Item], outputs: dict[str, list[str]]) -> list[JudgeTask]:
        judge = judge_of(spec)
        prompt = prompts.ArenaHardPrompt.load(judge_file(judge, judge.prompt_file, "prompt_file"))
        baseline = answers_by_question(judge_file(judge, judge.baseline_file, "baseline_file"))
        tasks = []
        for item in items:
            if item.id not in baseline:
                raise UsageError(f"{spec.id}: no {judge.baseline} answer for question {item.id}")
            question, model, base = turn_text(item, spec, 0), outputs[item.id][0], baseline[item.id][0]
            for slot, (a, b) in ((1, (base, model)), (2, (model, base))):
                conv = prompt.messages(question, a, b)
                tasks.append(JudgeTask(spec.id, item.id, slot, conv, {"A": a, "B": b}))
        return tasks

    def parse(self, task: JudgeTask, texts: Sequence[str], meta: dict[str, Any]) -> Verdict:
        return parse_pairwise("".join("\n" + t for t in texts))  # Arena-Hard parses its attempts concatenated

    def retry(self, task: JudgeTask, first_answer: str) -> Conversation:
        return prompts.arena_hard_continuation(task.conversation, first_answer)

    def aggregate(self, by_item: Judged) -> Aggregated:
        from fusebench.judging.metrics import PairwiseGame, arena_hard_score

        games = [PairwiseGame(i, slots[1][0], slots[2][0]) for i, slots in by_item.items()]
        result = arena_hard_score(games)
        items = {}
        for g in games:
            views = ((g.verdict_model_second, True), (g.verdict_model_first, False))
            shares = [win_share(label, model_is_b) for label, model_is_b in views if label is not None]
            if shares:
                items[g.question_id] = sum(shares) / len(shares)
        ci = None if result["ci_low"] is None else (result["ci_low"], result["ci_high"])
        return Aggregated(result["score"], ci, items, result)
