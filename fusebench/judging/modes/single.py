"""MT-Bench: each turn of each answer rated 1-10 by the judge (FastChat's single-answer grading)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from fusebench.data import Item
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
from fusebench.judging.verdicts import Verdict, parse_rating
from fusebench.scale import RATING_10
from fusebench.spec import BenchmarkSpec
from fusebench.stats import mean_ci


def rating_breakdown(rated: Sequence[tuple[JudgeTask, Verdict]], group: str) -> dict[str, dict[str, float]]:
    """Per-group count and mean rating; `group` names a task context field, or "turn" for the slot."""
    groups: dict[str, list[float]] = defaultdict(list)
    for task, verdict in rated:
        key = f"turn {task.slot}" if group == "turn" else str(task.context[group])
        groups[key].append(float(verdict.value))  # type: ignore[arg-type]
    return {g: {"n": len(v), "score": sum(v) / len(v)} for g, v in sorted(groups.items())}


class Single(JudgeMode):
    """Turn t is rated with FastChat's prompt for the question's category (reference-guided for math, reasoning and
    coding); the score is the mean over all rated turns, with a mean CI."""

    scale = RATING_10

    def tasks(self, spec: BenchmarkSpec, items: Sequence[Item], outputs: dict[str, list[str]]) -> list[JudgeTask]:
        judge = judge_of(spec)
        prompt = prompts.MTBenchPrompts.load(judge_file(judge, judge.prompt_file, "prompt_file"))
        references = answers_by_question(judge_file(judge, judge.reference_file, "reference_file"))
        tasks = []
        for item in items:
            category = str(item.row.get("category", ""))
            answers = outputs[item.id]
            questions = [turn_text(item, spec, t) for t in range(len(answers))]
            for turn in range(1, len(answers) + 1):
                conv = prompt.messages(category, turn, questions, answers, references.get(item.id))
                judged = {"answers": answers[:turn]}
                tasks.append(JudgeTask(spec.id, item.id, turn, conv, judged, {"category": category}))
        return tasks

    def parse(self, task: JudgeTask, texts: Sequence[str], meta: dict[str, Any]) -> Verdict:
        return parse_rating(texts[-1])

    def aggregate(self, by_item: Judged) -> Aggregated:
        from fusebench.judging.metrics import mt_bench_score

        ratings = [(i, turn, v[0]) for i, slots in by_item.items() for turn, v in sorted(slots.items())]
        result = mt_bench_score(ratings)
        per_item: dict[str, list[float]] = defaultdict(list)
        for i, _, rating in ratings:
            if rating is not None:
                per_item[i].append(rating)
        rated = [r for values in per_item.values() for r in values]
        items = {i: sum(v) / len(v) for i, v in per_item.items()}
        interval = mean_ci(rated) if rated else None
        ci = (interval.low, interval.high) if interval else None
        return Aggregated(result["score"], ci, items, result)

    def breakdown(self, rated: Sequence[tuple[JudgeTask, Verdict]]) -> dict[str, dict[str, float]]:
        return rating_breakdown(rated, "turn")
