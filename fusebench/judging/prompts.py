"""Judge prompts, rendered exactly as the reference implementations render them.

- Arena-Hard v0.1 (lmarena/arena-hard-auto config/judge_config.yaml): system prompt + one user template; game 1
  shows the baseline as assistant A, game 2 swaps the two answers.
- MT-Bench (FastChat llm_judge, judge_prompts.jsonl): "single-v1" / "single-math-v1" (with the GPT-4 reference answer,
  for math, reasoning and coding) for turn 1, and their "-multi-turn" variants for turn 2.
- AlpacaEval 2.0 (alpaca_eval, weighted_alpaca_eval_gpt4_turbo): alpaca_eval_clf.txt filled by alpaca_eval's own
  `make_prompts` and split into chat messages by its `prompt_to_chatml`; the reference output is output_1 and the
  model output_2, switched per instruction with alpaca_eval's seeded coin (seed 0, as its annotators use).
- AlignBench v1.1 (THUDM/AlignBench judge.py): the reference-guided multi-dimensional prompt, dimensions chosen by
  the question's subcategory. Its repository has no license, so its files are read at run time from a local copy.
"""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fusebench.backends.base import Conversation
from fusebench.errors import UsageError

ARENA_HARD_CONTINUE = "continue your judgment and finish by outputting a final verdict label"
MT_BENCH_REFERENCE_CATEGORIES = ("math", "reasoning", "coding")
ALPACA_EVAL_SEED = 0  # alpaca_eval's annotators seed their output-order switch with 0


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read judge prompt file {path}: {exc.strerror}") from exc


# ---- Arena-Hard ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArenaHardPrompt:
    """Arena-Hard's judge system prompt and user template (judge_config.yaml)."""

    system_prompt: str
    template: str

    @classmethod
    def load(cls, path: Path) -> ArenaHardPrompt:
        """Read judge_config.yaml."""
        config = yaml.safe_load(_read_text(path))
        try:
            (template,) = config["prompt_template"]
            return cls(config["system_prompt"], template)
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{path} is not an Arena-Hard judge config (system_prompt, one prompt_template)") from exc

    def messages(self, question: str, answer_a: str, answer_b: str) -> Conversation:
        """The judge conversation for one game: assistant A's answer first."""
        user = self.template.format(question_1=question, answer_1=answer_a, answer_2=answer_b)
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]


def arena_hard_continuation(conversation: Conversation, first_judgment: str) -> Conversation:
    """Arena-Hard's second judgment attempt: the first answer, then the request to finish with a verdict label."""
    return [
        *conversation,
        {"role": "assistant", "content": first_judgment},
        {"role": "user", "content": ARENA_HARD_CONTINUE},
    ]


# ---- MT-Bench --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MTBenchPrompts:
    """FastChat's judge prompts by name (judge_prompts.jsonl)."""

    by_name: dict[str, dict[str, Any]]

    @classmethod
    def load(cls, path: Path) -> MTBenchPrompts:
        rows = [json.loads(line) for line in _read_text(path).splitlines() if line.strip()]
        return cls({row["name"]: row for row in rows})

    @staticmethod
    def prompt_name(category: str, turn: int) -> str:
        """FastChat's choice: the math prompt (with reference) for math/reasoning/coding; multi-turn for turn 2."""
        name = "single-math-v1" if category in MT_BENCH_REFERENCE_CATEGORIES else "single-v1"
        return name + ("-multi-turn" if turn == 2 else "")

    def messages(
        self,
        category: str,
        turn: int,
        questions: Sequence[str],
        answers: Sequence[str],
        references: Sequence[str] | None = None,
    ) -> Conversation:
        """Judge conversation rating `turn` (1 or 2) of one answered question."""
        name = self.prompt_name(category, turn)
        if name not in self.by_name:
            raise UsageError(f"MT-Bench judge prompt {name!r} is missing from judge_prompts.jsonl")
        prompt = self.by_name[name]
        needs_reference = category in MT_BENCH_REFERENCE_CATEGORIES
        if needs_reference and not references:
            raise UsageError(f"MT-Bench: a {category} question needs a reference answer")
        kwargs: dict[str, str] = {}
        if turn == 1:
            kwargs = {"question": questions[0], "answer": answers[0]}
            if needs_reference:
                assert references is not None
                kwargs["ref_answer_1"] = references[0]
        else:
            kwargs = {"question_1": questions[0], "question_2": questions[1]}
            kwargs |= {"answer_1": answers[0], "answer_2": answers[1]}
            if needs_reference:
                assert references is not None
                kwargs |= {"ref_answer_1": references[0], "ref_answer_2": references[1]}
        return [
            {"role": "system", "content": prompt["system_prompt"]},
            {"role": "user", "content": prompt["prompt_template"].format(**kwargs)},
        ]


# ---- AlpacaEval ------------------------------------------------------------------------------------------------


def _alpaca_eval_utils() -> Any:
    with warnings.catch_warnings():  # alpaca_eval imports pkg_resources, which warns on import
        warnings.simplefilter("ignore")
        from alpaca_eval import utils

    return utils


def alpaca_eval_switched(instruction: str, seed: int = ALPACA_EVAL_SEED) -> bool:
    """Whether alpaca_eval shows the model's output first (as "m") for this instruction."""
    utils = _alpaca_eval_utils()
    return bool(utils.random_seeded_choice(seed="is_switched_outputs" + instruction + str(seed), choices=[False, True]))


def alpaca_eval_messages(template: str, instruction: str, output_1: str, output_2: str) -> Conversation:
    """alpaca_eval_clf.txt filled with alpaca_eval's make_prompts and split with its prompt_to_chatml."""
    import pandas as pd

    utils = _alpaca_eval_utils()
    frame = pd.DataFrame([{"instruction": instruction, "output_1": output_1, "output_2": output_2}])
    prompts, _ = utils.make_prompts(frame, template)
    return [{"role": m["role"], "content": m["content"]} for m in utils.prompt_to_chatml(prompts[0])]


# ---- AlignBench ------------------------------------------------------------------------------------------------


def _find(root: Path, *names: str) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    raise UsageError(f"AlignBench data folder {root} has none of: {', '.join(names)}")


def _template_from_judge_py(path: Path) -> str:
    """The `base_prompt` string literal of AlignBench's judge.py (its prompt is not a separate file there)."""
    for node in ast.walk(ast.parse(_read_text(path))):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "base_prompt" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise UsageError(f"no base_prompt string in {path}")


@dataclass(frozen=True)
class AlignBenchPrompt:
    """AlignBench's judge template and its dimension configs, from a local copy of its repository."""

    template: str
    dimension_set: dict[str, list[str]]  # answer type -> dimensions
    dimension_definition: dict[str, str]
    subcategory_type: dict[str, str]  # subcategory -> answer type

    @classmethod
    def load(cls, root: Path) -> AlignBenchPrompt:
        """Read a THUDM/AlignBench checkout (config/*.json, judge.py) or a flat copy (config_*.json + template)."""

        def config(name: str) -> Any:
            return json.loads(_read_text(_find(root, f"config/{name}.json", f"config_{name}.json")))

        if (root / "judge_prompt_template.txt").is_file():
            template = _read_text(root / "judge_prompt_template.txt")
        else:
            template = _template_from_judge_py(_find(root, "judge.py"))
        return cls(
            template, config("dimension_set"), config("dimension_definition"), config("subcategory_question_mapping")
        )

    def dimensions(self, subcategory: str) -> list[str]:
        kind = self.subcategory_type.get(subcategory)
        if kind is None or kind not in self.dimension_set:
            raise UsageError(f"AlignBench: no dimensions for subcategory {subcategory!r}")
        return self.dimension_set[kind]

    def messages(self, category: str, subcategory: str, question: str, reference: str, answer: str) -> Conversation:
        """One user message, as judge.py sends it."""
        description = "".join(
            f"{i + 1}. {dim}: {self.dimension_definition.get(dim)}\n"
            for i, dim in enumerate(self.dimensions(subcategory))
        )
        prompt = self.template.format(
            category=category, dimensions=description, question=question, reference=reference, answer=answer
        )
        return [{"role": "user", "content": prompt}]
