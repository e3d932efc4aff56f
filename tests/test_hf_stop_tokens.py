"""Completion token counts of rows cut by a stop string, when the model's pad token is not one of its EOS tokens.

After a row of a batch stops, transformers fills it with the pad token until the batch ends. Qwen2.5-Coder's
GGUF conversion pads with <|endoftext|> while its EOS is <|im_end|>: the pads are not EOS, so they must not count
as generated tokens. The bundled SmolLM2 pads with its EOS, so its tokenizer stands in with another pad id here
(HFBackend.__new__: the weights are not needed to read a generated row).
"""

from __future__ import annotations

from fusebench.backends.chat import ChatTokenizer
from fusebench.backends.hf import HFBackend
from fusebench.models import resolve_model


def test_a_stopped_rows_pads_are_not_counted_as_completion_tokens() -> None:
    backend = HFBackend.__new__(HFBackend)
    backend.tokenizer = ChatTokenizer(resolve_model(None)).tokenizer
    backend.eos_ids = {backend.tokenizer.convert_tokens_to_ids("<|im_end|>")}
    backend.pad_id = backend.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert backend.pad_id not in backend.eos_ids
    answer = backend.tokenizer("    return sorted(xs)\n```", add_special_tokens=False)["input_ids"]
    text, n_tokens, reason = backend._finish([*answer, *[backend.pad_id] * 40], ("\n```", "\nprint("))
    assert (text, n_tokens, reason) == ("    return sorted(xs)", len(answer), "stop")
    eos_ended = [*answer[:3], next(iter(backend.eos_ids)), *[backend.pad_id] * 5]
    assert backend._finish(eos_ended, ("\n```",))[1:] == (4, "stop")
