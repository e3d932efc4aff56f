"""fusebench's HumanEval verdicts agree with the human-eval harness's rule on real model answers.

human-eval (openai/human-eval, `execution.py` `check_correctness`) executes prompt + completion + "\\n" + test +
"\\n" + "check(entry_point)" and passes an answer that runs to the end. Its harness runs model code outside any
sandbox, so the rule is written out here and its programs run in fusebench's sandbox (in-process mode), beside
fusebench's own split-mode verdicts, on 24 real answers of Qwen2.5-Coder-0.5B-Instruct scored together.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusebench.data import load_items
from fusebench.sandbox import Program, run_many
from fusebench.scorers.base import ScoreInput
from fusebench.scorers.code import HUMANEVAL_LIMITS, extract_code, score_many
from fusebench.scorers.sanitize import answer_text
from fusebench.spec import get_benchmark

REAL_OUTPUTS = Path(__file__).parent / "fixtures" / "humaneval_real_outputs.jsonl"


def _human_eval_rule_program(row: dict, completion: str) -> Program:
    return Program(row["prompt"] + completion + "\n" + row["test"] + "\n" + f"check({row['entry_point']})")


@pytest.mark.timeout(300)
def test_humaneval_verdicts_agree_with_the_human_eval_rule_on_real_answers() -> None:
    spec = get_benchmark("humaneval")
    rows = {item.id: item.row for item in load_items(spec).items}
    answers = [json.loads(line) for line in REAL_OUTPUTS.read_text().splitlines()]
    assert {a["setup"] for a in answers} == {"evalplus", "old-code-block"}
    texts = [
        answer_text(spec, rows[a["id"]], a["output"]) if a["setup"] == "evalplus" else a["output"] for a in answers
    ]
    ours = score_many([ScoreInput(t, None, rows[a["id"]]) for t, a in zip(texts, answers, strict=True)], "humaneval")
    codes = [extract_code(t, rows[a["id"]]["entry_point"]) for t, a in zip(texts, answers, strict=True)]
    reference = run_many(
        [_human_eval_rule_program(rows[a["id"]], c) for a, c in zip(answers, codes, strict=True)], HUMANEVAL_LIMITS
    )
    verdicts = [
        (a["id"], a["setup"], s.value == 1.0, r.passed) for a, s, r in zip(answers, ours, reference, strict=True)
    ]
    assert [v for v in verdicts if v[2] != v[3]] == []
    passed = sum(v[3] for v in verdicts)
    assert 0 < passed < len(verdicts)  # both verdicts occur: agreement is not all-pass or all-fail
