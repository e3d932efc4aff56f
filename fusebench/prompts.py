"""Spec prompt template + item -> chat conversation."""

from __future__ import annotations

from fusebench.backends.base import Conversation
from fusebench.backends.conventions import NO_DEFAULT_SYSTEM
from fusebench.data import Item
from fusebench.errors import UsageError
from fusebench.scorers.choice import format_choices
from fusebench.spec import PromptSpec


def build_conversation(prompt: PromptSpec, item: Item) -> Conversation:
    """Render the user template with the item's fields (`{input}` is the item's input).

    A system prompt comes first; `default_system: drop` puts the no-system marker there instead; a `prefill` ends
    the conversation as an open assistant turn (conventions in backends/conventions.py).
    """
    text = item.input.strip() if prompt.strip_input else item.input
    if prompt.choices_field:
        text = format_choices(text, list(item.row[prompt.choices_field]), prompt.choices_format)
    try:
        user = prompt.user.format_map({**item.row, "input": text})
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(f"prompt template {prompt.user!r} cannot be filled for item {item.id}: {exc}") from exc
    conv: Conversation = []
    if prompt.system:
        conv.append({"role": "system", "content": prompt.system})
    elif prompt.default_system == "drop":
        conv.append(dict(NO_DEFAULT_SYSTEM))
    conv.append({"role": "user", "content": user})
    if prompt.prefill:
        conv.append({"role": "assistant", "content": prompt.prefill})
    return conv
