"""Training prompts: JSONL prompt sets -> chat conversations with their domain, gold target and scorer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fusebench.backends.base import Conversation
from fusebench.data import read_rows
from fusebench.errors import UsageError
from fusebench.targets import TRANSFORMS
from fusebench_train.config import DEFAULT_SCORERS, MATH_SYSTEM, FuseConfig, PromptSet


@dataclass(frozen=True)
class TrainPrompt:
    """One training prompt: a stable id, its domain, the conversation to sample from, and how to check answers."""

    id: str
    domain: str
    messages: Conversation
    target: Any  # gold answer (math), tests row (code), None (instruction)
    item: dict[str, Any]
    scorer: str | None  # fusebench scorer name for verifiable domains
    prefill: str = ""  # the response's given start: sampled after it, then scored and trained with it

    def conversation(self) -> Conversation:
        """The conversation a model answers: the prompt, then the prefill as an open assistant turn."""
        return [*self.messages, {"role": "assistant", "content": self.prefill}] if self.prefill else list(self.messages)

    def response(self, completion: str) -> str:
        """The whole response to this prompt: prefill + completion (what is scored and trained on)."""
        return self.prefill + completion


def _rows(spec: PromptSet, cfg: FuseConfig) -> list[dict[str, Any]]:
    path = cfg.resolve_path(spec.path)
    if not path.is_file():
        raise UsageError(f"cannot read prompt set {path}: file not found")
    rows = read_rows(path)
    return rows[: spec.limit] if spec.limit else rows


def load_prompts(cfg: FuseConfig) -> list[TrainPrompt]:
    """Every configured training prompt set, in order; ids are unique across sets."""
    return load_prompt_sets(cfg, cfg.prompts)


def load_prompt_sets(cfg: FuseConfig, sets: Sequence[PromptSet]) -> list[TrainPrompt]:
    """The prompts of `sets` (training or validation prompt sets of `cfg`), in order; ids unique across sets."""
    prompts: list[TrainPrompt] = []
    for spec in sets:
        transform = TRANSFORMS.get(spec.target_transform)
        if transform is None:
            raise UsageError(f"prompt set {spec.path}: unknown target_transform {spec.target_transform!r}")
        stem = cfg.resolve_path(spec.path).stem
        system = spec.system if spec.system is not None else (MATH_SYSTEM if spec.domain == "math" else None)
        for index, row in enumerate(_rows(spec, cfg)):
            try:
                pid = str(row[spec.id_field]) if spec.id_field else f"{stem}-{index}"
                user = spec.prompt_template.format(**row) if spec.prompt_template else str(row[spec.prompt_field])
                target = transform(row[spec.target_field]) if spec.target_field else None
            except (KeyError, IndexError) as exc:
                raise UsageError(f"prompt set {spec.path}: row {index} has no field {exc}") from exc
            messages: Conversation = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": user})
            scorer = spec.scorer or DEFAULT_SCORERS.get(spec.domain)
            prompts.append(TrainPrompt(pid, spec.domain, messages, target, row, scorer, spec.prefill))
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise UsageError("prompts: duplicate prompt ids across prompt sets (set id_field)")
    return prompts
