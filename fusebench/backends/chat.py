"""What the local backends (hf, vllm) share: the tokenizer with its chat template, prompt encoding, fingerprint."""

from __future__ import annotations

import hashlib
from typing import Any

from transformers import AutoTokenizer

from fusebench.backends.base import Conversation
from fusebench.errors import UsageError
from fusebench.models import ResolvedModel, load_source


class ChatTokenizer:
    """A model's tokenizer; `encode` renders a conversation with the chat template and the generation prompt."""

    def __init__(self, model: ResolvedModel) -> None:
        self.model = model
        self.source, self.revision = load_source(model)
        self.tokenizer: Any = AutoTokenizer.from_pretrained(self.source, revision=self.revision)
        if not self.tokenizer.chat_template:
            raise UsageError(f"model {model.name!r} has no chat template")

    def encode(self, conv: Conversation) -> list[int]:
        """Prompt token ids: the chat template with the generation prompt appended."""
        text = self.tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def fingerprint(self, dtype: str) -> dict[str, str]:
        """Model identity + weights hash/revision + chat-template hash + dtype (outputs differ across dtypes)."""
        template = str(self.tokenizer.chat_template)
        return {
            "model": self.model.name,
            "weights": self.model.fingerprint,
            "chat_template": hashlib.sha256(template.encode()).hexdigest(),
            "dtype": dtype,
        }
