"""What the local backends (hf, vllm) share: the tokenizer with its chat template, prompt encoding, fingerprint."""

from __future__ import annotations

import hashlib
from typing import Any

from transformers import AutoTokenizer

from fusebench.backends.base import Conversation
from fusebench.backends.conventions import cut_default_system, drops_default_system, messages_of, prefill_of
from fusebench.errors import UsageError
from fusebench.models import ResolvedModel, load_source

_PREFILL_END = "-[[]]-fusebench-prefill-ends-here-[[]]-"


def render(tokenizer: Any, conv: Conversation) -> str:
    """Prompt text of a conversation (conventions in backends/conventions.py).

    Without a prefill: the chat template with the generation prompt. With one: rendered as EvalPlus renders its
    response prefix, the whole conversation with a marker after the prefill, cut at the marker (the same text as
    the generation prompt + prefill on ChatML templates, and right on templates that trim message content too).
    """
    messages = messages_of(conv)
    prefill = prefill_of(messages)
    if prefill is None:
        text = str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    else:
        marked = [*messages[:-1], {"role": "assistant", "content": prefill + _PREFILL_END}]
        full = str(tokenizer.apply_chat_template(marked, tokenize=False))
        if _PREFILL_END not in full:
            raise UsageError("the chat template drops the final assistant message, so it cannot take a prefill")
        text = full.split(_PREFILL_END)[0]
    return cut_default_system(text) if drops_default_system(conv) else text


class ChatTokenizer:
    """A model's tokenizer; `encode` renders a conversation with the chat template and the generation prompt."""

    def __init__(self, model: ResolvedModel) -> None:
        self.model = model
        self.source, self.revision = load_source(model)
        self.tokenizer: Any = AutoTokenizer.from_pretrained(self.source, revision=self.revision)
        if not self.tokenizer.chat_template:
            raise UsageError(f"model {model.name!r} has no chat template")

    def encode(self, conv: Conversation) -> list[int]:
        """Prompt token ids of `render(conv)`."""
        return list(self.tokenizer(render(self.tokenizer, conv), add_special_tokens=False)["input_ids"])

    def fingerprint(self, dtype: str) -> dict[str, str]:
        """Model identity + weights hash/revision + chat-template hash + dtype (outputs differ across dtypes)."""
        template = str(self.tokenizer.chat_template)
        return {
            "model": self.model.name,
            "weights": self.model.fingerprint,
            "chat_template": hashlib.sha256(template.encode()).hexdigest(),
            "dtype": dtype,
        }
