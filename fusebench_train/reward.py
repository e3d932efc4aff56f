"""Reward-model scoring of open-ended responses with any AutoModelForSequenceClassification.

The conversation (prompt + response) is rendered with the reward model's own chat template and the
score is the first logit (ArmoRM-style models that return a `score` field are read from there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fusebench.backends.base import Conversation


class RewardModel:
    """A sequence-classification reward model; `score` returns one float per (conversation, response)."""

    def __init__(
        self, path: str, *, device: str = "auto", max_length: int = 4096, trust_remote_code: bool = False
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=trust_remote_code)
        self.model.to(self.device).eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.max_length = max_length

    def _render(self, messages: Conversation, response: str) -> str:
        conv = [*messages, {"role": "assistant", "content": response}]
        if self.tokenizer.chat_template:
            return str(self.tokenizer.apply_chat_template(conv, tokenize=False))
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in conv)

    def score(self, items: Sequence[tuple[Conversation, str]], batch_size: int = 4) -> list[float]:
        """Reward of each response to its conversation, in input order."""
        import torch

        out: list[float] = []
        for start in range(0, len(items), batch_size):
            texts = [self._render(m, r) for m, r in items[start : start + batch_size]]
            enc = self.tokenizer(
                texts,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
                add_special_tokens=False,
            ).to(self.device)
            with torch.no_grad():
                result: Any = self.model(**enc)
            values = getattr(result, "score", None)
            if values is None:
                values = result.logits[:, 0]
            out.extend(float(v) for v in values.reshape(len(texts), -1)[:, 0].float().cpu())
        return out
