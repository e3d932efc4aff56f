"""Conversation conventions through which a spec says what a reference implementation does to the prompt.

- A final **assistant** message is a prefill: the prompt ends inside an open assistant turn that starts with that
  text, and the model continues it (EvalPlus's response prefix). The completion is only the continuation.
- A first **system message with empty content** (`NO_DEFAULT_SYSTEM`) asks for no system turn at all: the chat
  template renders without one, and a default system turn a ChatML template adds on its own (Qwen2.5, SmolLM2) is
  cut, as FuseEval's copy of TIGER-Lab's MMLU-Pro script does.

Both are plain messages, so they are part of the prompt in every cache key.
"""

from __future__ import annotations

from fusebench.backends.base import Conversation, Message

NO_DEFAULT_SYSTEM: Message = {"role": "system", "content": ""}
_CHATML_SYSTEM = "<|im_start|>system"
_CHATML_USER = "<|im_start|>user"


def drops_default_system(conv: Conversation) -> bool:
    """Whether the conversation asks for no system turn (it starts with NO_DEFAULT_SYSTEM)."""
    return bool(conv) and conv[0] == NO_DEFAULT_SYSTEM


def messages_of(conv: Conversation) -> Conversation:
    """The conversation without the NO_DEFAULT_SYSTEM marker: what a chat template or an API receives."""
    return conv[1:] if drops_default_system(conv) else list(conv)


def prefill_of(conv: Conversation) -> str | None:
    """The assistant prefill the model continues (the content of a final assistant message), or None."""
    return conv[-1]["content"] if conv and conv[-1]["role"] == "assistant" else None


def cut_default_system(text: str) -> str:
    """A rendered ChatML prompt without its system turn: FuseEval's rule (keep from the first user turn on)."""
    if _CHATML_SYSTEM in text and _CHATML_USER in text:
        return _CHATML_USER + text.split(_CHATML_USER, 1)[1]
    return text
