"""AlpacaEval 2.0: the model's output against gpt4_turbo's reference, a preference read from the judge's logprobs,
scored with alpaca_eval's own length-controlled win rate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fusebench.data import Item
from fusebench.judging import prompts
from fusebench.judging.modes.base import Aggregated, Judged, JudgeMode, JudgeTask, judge_file, judge_of
from fusebench.judging.verdicts import Verdict, parse_alpaca_eval
from fusebench.spec import BenchmarkSpec


class AlpacaEval(JudgeMode):
    """The two outputs are shown in alpaca_eval's seeded order as m/M; identical outputs tie without a judge."""

    logprobs = 5  # the annotator config's top_logprobs
    reference_outputs_file = "model_outputs.json"

    def tasks(self, spec: BenchmarkSpec, items: Sequence[Item], outputs: dict[str, list[str]]) -> list[JudgeTask]:
        judge = judge_of(spec)
        template = judge_file(judge, judge.prompt_file, "prompt_file").read_text(encoding="utf-8")
        tasks = []
        for item in items:
            instruction, reference, output = item.input, str(item.target), outputs[item.id][0]
            switched = prompts.alpaca_eval_switched(instruction)
            first, second = (output, reference) if switched else (reference, output)
            conv = prompts.alpaca_eval_messages(template, instruction, first, second)
            context = {"model_token": "m" if switched else "M", "instruction": instruction, "reference": reference}
            preset = Verdict(1.5, "identical outputs") if output == reference else None
            tasks.append(JudgeTask(spec.id, item.id, 1, conv, {"m": first, "M": second}, context, preset))
        return tasks

    def parse(self, task: JudgeTask, texts: Sequence[str], meta: dict[str, Any]) -> Verdict:
        return parse_alpaca_eval(texts[-1], meta.get("logprobs"), task.context["model_token"])

    def reference_outputs(self, model: str, answers: Sequence[tuple[str, str]]) -> list[dict[str, Any]] | None:
        """alpaca_eval's model_outputs.json: `alpaca_eval --model_outputs <file>` scores the same answers."""
        from fusebench.judging.metrics import alpaca_eval_export  # pandas, scikit-learn: only when there is one

        return alpaca_eval_export(model, answers)

    def aggregate(self, by_item: Judged) -> Aggregated:
        from fusebench.judging.metrics import AlpacaAnnotation, alpaca_eval_score

        annotations = []
        for value, task in (slots[1] for slots in by_item.values()):
            output = task.judged[task.context["model_token"]]
            annotations.append(AlpacaAnnotation(task.context["instruction"], output, task.context["reference"], value))
        items = {i: slots[1][0] - 1.0 for i, slots in by_item.items() if slots[1][0] is not None}
        if len(items) < 2:  # alpaca_eval's length-controlled GLM cannot be fit (its length feature is standardised)
            note = "fewer than 2 judged outputs: alpaca_eval's length-controlled win rate is undefined"
            return Aggregated(None, None, items, {"lc_win_rate": None, "n": len(items), "note": note})
        result = alpaca_eval_score(annotations)
        return Aggregated(result["lc_win_rate"], None, items, result)
