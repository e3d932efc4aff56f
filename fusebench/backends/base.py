"""The Backend protocol shared by the hf, vllm and openai backends."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}
Conversation = list[Message]
MAX_LOGPROBS = 20  # the OpenAI API's cap on top_logprobs
# progress: (tokens generated since the previous call, all rows together; tokens of max_new_tokens that rows which
# ended meanwhile will not generate), so a progress bar's budget of tokens still to come shrinks as answers end
TokenCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its log-probability and the top alternatives (token text -> log-probability)."""

    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GenParams:
    """Generation parameters; part of every cache key."""

    max_new_tokens: int = 2048
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int = 0
    logprobs: int = 0  # top alternatives to return per generated token (0: none); Completion.meta["logprobs"]

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.temperature < math.inf:  # NaN fails too
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if not 0 <= self.logprobs <= MAX_LOGPROBS:
            raise ValueError(f"logprobs must be in [0, {MAX_LOGPROBS}], got {self.logprobs}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        if not self.logprobs:  # absent when unused, so cache keys from before the field existed stay valid
            del d["logprobs"]
        return d


def sample_seed(seed: int, prompt: Sequence[int] | str, sample: int, bits: int = 63) -> int:
    """The seed of sample `sample` of `prompt` (token ids, or text for backends that send text) in a run seeded
    with `seed`. Every backend seeds each sample this way: a draw depends neither on the batch it ran in nor on
    the other prompts (one run seed for all would correlate their draws)."""
    text = f"{seed}:{sample}:" + (prompt if isinstance(prompt, str) else ",".join(map(str, prompt)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> (64 - bits)


@dataclass
class Completion:
    """One generated answer for one request (index into the request list)."""

    index: int
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length" | "error"
    latency_s: float
    meta: dict[str, Any] = field(default_factory=dict)  # with params.logprobs: "logprobs" = [asdict(TokenLogprob)]


@dataclass
class EngineStats:
    """What a local backend measured of itself: weights load time and size, decode steps, the rows they decoded,
    the time in generate calls and the part of it spent on prompts before the first token (prefill). None: not
    measured, or nothing loaded yet."""

    load_s: float | None = None
    weights_bytes: int | None = None
    decode_steps: int = 0
    decode_rows: int = 0  # rows summed over decode steps: decode_rows / decode_steps is the mean batch
    generate_s: float = 0.0
    prefill_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def report_tokens(
    completions: Iterable[Completion], params: GenParams, on_tokens: TokenCallback | None
) -> Iterator[Completion]:
    """Pass completions through, reporting each one's tokens as it arrives (backends that see whole answers)."""
    for completion in completions:
        if on_tokens is not None:
            tokens = completion.completion_tokens
            on_tokens(tokens, max(0, params.max_new_tokens - tokens))
        yield completion


class Backend(Protocol):
    """A model that turns conversations into completions."""

    name: str

    def fingerprint(self) -> dict[str, str]:
        """Identity of the model for cache keys: model id, revision/file hash, chat-template hash."""
        ...

    def generate(
        self, convs: Sequence[Conversation], params: GenParams, on_tokens: TokenCallback | None = None
    ) -> Iterator[Completion]:
        """Yield one Completion per conversation (n per conversation when params.n > 1), as they finish; report
        generated tokens to `on_tokens` as they come (per decode step, or per answer where steps are not seen)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Engine details recorded with the run (engine version, dtype, device)."""
        ...


def release(backend: Backend) -> None:
    """Free what a backend holds now rather than at exit, where it has a `close` (vLLM's engine-core process)."""
    close = getattr(backend, "close", None)
    if callable(close):
        close()
