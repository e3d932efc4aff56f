"""A third-party judge mode, as a team would ship it in its own package: each answer rated 1-10 for helpfulness.

It is registered through the `fusebench.judge_modes` entry-point group (tests/test_judge_modes.py installs it);
helpfulness.yaml beside it is the benchmark that uses it. Nothing else in fusebench names it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fusebench.data import Item
from fusebench.judging.modes.base import Aggregated, Judged, JudgeMode, JudgeTask
from fusebench.judging.verdicts import Verdict, parse_rating
from fusebench.scale import RATING_10
from fusebench.spec import BenchmarkSpec
from fusebench.stats import mean_ci

LOOSE_RATING = re.compile(r"(?<![\d.])(10|[1-9])(?![\d%]|\.\d)")  # a whole number 1-10, not 100 or 7.5
SYSTEM = "You are a strict grader of assistant answers."
TEMPLATE = (
    "Rate how helpful the answer is to the question on a scale of 1 to 10, then write the rating as [[rating]], "
    "for example [[6]].\n\nQuestion: {question}\n\nAnswer: {answer}"
)


class Helpfulness(JudgeMode):
    """One judgment per answer; the score is the mean rating over rated answers, with its 95% CI."""

    scale = RATING_10

    def tasks(self, spec: BenchmarkSpec, items: Sequence[Item], outputs: dict[str, list[str]]) -> list[JudgeTask]:
        tasks = []
        for item in items:
            answer = outputs[item.id][0]
            user = TEMPLATE.format(question=item.input, answer=answer)
            conv = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
            tasks.append(JudgeTask(spec.id, item.id, 1, conv, {"answer": answer}, {"topic": item.row["topic"]}))
        return tasks

    def parse(self, task: JudgeTask, texts: Sequence[str], meta: dict[str, Any]) -> Verdict:
        """FastChat's [[rating]] (or [rating]); else, for judges that ignore the format, the first whole number 1-10
        ("The answer is 6 out of 10.")."""
        verdict = parse_rating(texts[-1])
        if not verdict.ok:
            found = LOOSE_RATING.search(texts[-1])
            return Verdict(float(found.group(1)), "loose") if found else verdict
        if not 1 <= float(verdict.value) <= 10:  # type: ignore[arg-type]
            return Verdict(None, "rating outside 1-10")
        return verdict

    def aggregate(self, by_item: Judged) -> Aggregated:
        items = {i: float(slots[1][0]) for i, slots in by_item.items() if slots[1][0] is not None}
        if not items:
            return Aggregated(None, None, {}, {"n_rated": 0})
        interval = mean_ci(list(items.values()))
        metrics = {"n_rated": len(items), "judge_failures": len(by_item) - len(items)}
        return Aggregated(interval.estimate, (interval.low, interval.high), items, metrics)

    def breakdown(self, rated: Sequence[tuple[JudgeTask, Verdict]]) -> dict[str, dict[str, float]]:
        by_topic: dict[str, list[float]] = {}
        for task, verdict in rated:
            by_topic.setdefault(task.context["topic"], []).append(float(verdict.value))  # type: ignore[arg-type]
        return {t: {"n": len(v), "score": sum(v) / len(v)} for t, v in sorted(by_topic.items())}
