"""AlignBench v1.1: each answer rated 1-10 with the reference-guided multi-dimensional prompt; the score is the mean
of the reasoning and language groups' category means. Its files are read from a local copy (no license)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fusebench.data import Item
from fusebench.judging import prompts
from fusebench.judging.modes.base import Aggregated, Judged, JudgeMode, JudgeTask, judge_data_root, judge_of
from fusebench.judging.modes.single import rating_breakdown
from fusebench.judging.verdicts import Verdict, parse_alignbench
from fusebench.scale import RATING_10
from fusebench.spec import BenchmarkSpec


class AlignBench(JudgeMode):
    scale = RATING_10

    def tasks(self, spec: BenchmarkSpec, items: Sequence[Item], outputs: dict[str, list[str]]) -> list[JudgeTask]:
        root = judge_data_root(judge_of(spec))
        assert root is not None
        prompt = prompts.AlignBenchPrompt.load(root)
        tasks = []
        for item in items:
            row, answer = item.row, outputs[item.id][0]
            conv = prompt.messages(row["category"], row["subcategory"], row["question"], row["reference"], answer)
            tasks.append(JudgeTask(spec.id, item.id, 1, conv, {"answer": answer}, {"category": row["category"]}))
        return tasks

    def parse(self, task: JudgeTask, texts: Sequence[str], meta: dict[str, Any]) -> Verdict:
        return parse_alignbench(texts[-1])

    def aggregate(self, by_item: Judged) -> Aggregated:
        from fusebench.judging.metrics import alignbench_score

        ratings = [(i, slots[1][1].context["category"], slots[1][0]) for i, slots in by_item.items()]
        result = alignbench_score(ratings)
        items = {i: r for i, _, r in ratings if r is not None}
        return Aggregated(result["score"], None, items, result)

    def breakdown(self, rated: Sequence[tuple[JudgeTask, Verdict]]) -> dict[str, dict[str, float]]:
        return rating_breakdown(rated, "category")
