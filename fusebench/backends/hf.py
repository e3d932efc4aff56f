"""Hugging Face transformers backend: chat template, left-padded length-sorted batches, greedy or per-row seeded
sampling."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from functools import cached_property
from typing import Any

import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    GenerationConfig,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    StopStringCriteria,
)

from fusebench.backends.base import (
    Completion,
    Conversation,
    EngineStats,
    GenParams,
    TokenCallback,
    TokenLogprob,
    sample_seed,
)
from fusebench.backends.chat import ChatTokenizer
from fusebench.backends.hf_decode import CPU_ATTENTION, preallocated_cache
from fusebench.backends.hf_identity import DEFAULT_BATCH_CPU, DEFAULT_BATCH_GPU, SAMPLER_VERSION
from fusebench.backends.hf_sampling import RowSeededSampler
from fusebench.errors import UsageError
from fusebench.keys import SAMPLER_FIELD
from fusebench.models import ResolvedModel

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        picked = torch.device(device)
    except RuntimeError as exc:
        raise UsageError(f"unknown device {device!r}") from exc
    if picked.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} asked for, but this torch build sees no CUDA GPU")
    return picked


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' -> bfloat16 on GPUs (float16 on older ones), as models are served; float32 on CPU, where it is the
    only precision whose greedy outputs do not depend on the batch (measured on 100 GSM8K items x 256 tokens:
    float32 identical at batch 32, 64 and 100; bfloat16 only 14/100 identical between batch 32 and 50), so a
    resumed run scores exactly like an uninterrupted one. `--dtype bfloat16` is about 2x faster on AMX CPUs."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in _DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}; use auto, {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


class StepReporter(StoppingCriteria):
    """A stopping criterion that counts each decode step: the rows still generating (times `repeat`, the copies of
    a greedy row) go to `on_tokens` with the tokens that rows ending at this step leave of `max_new_tokens`, and the
    step to `stats`. A row stops counting after EOS or a stop string; it stops generating at a stop string (this
    criterion stands in for `stop`)."""

    def __init__(
        self,
        eos_ids: set[int],
        stats: EngineStats,
        on_tokens: TokenCallback | None,
        max_new_tokens: int,
        repeat: int = 1,
        stop: StopStringCriteria | None = None,
    ) -> None:
        self.eos = torch.tensor(sorted(eos_ids))
        self.stats = stats
        self.on_tokens = on_tokens
        self.max_new_tokens = max_new_tokens
        self.repeat = repeat
        self.stop = stop
        self.steps = 0
        self.done: torch.Tensor | None = None
        self.started: float | None = None  # set when the batch starts: its first step ends the prefill

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        if self.done is None:
            if self.started is not None:
                self.stats.prefill_s += time.perf_counter() - self.started
            self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            self.eos = self.eos.to(input_ids.device)
        active = int((~self.done).sum())
        finished = torch.isin(input_ids[:, -1], self.eos)
        if self.stop is not None:
            finished |= self.stop(input_ids, scores)
        ended = int((finished & ~self.done).sum())
        self.done |= finished
        self.steps += 1
        self.stats.decode_steps += 1
        self.stats.decode_rows += input_ids.shape[0]
        if self.on_tokens is not None and active:
            self.on_tokens(active * self.repeat, ended * self.repeat * (self.max_new_tokens - self.steps))
        return finished  # type: ignore[return-value]


def left_pad(rows: Sequence[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Token rows left-padded to one length, with their attention mask (no tokenizer needed: some transformers
    versions load a GGUF tokenizer without a pad token, and `tokenizer.pad` then refuses)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return {"input_ids": ids, "attention_mask": mask}


class HFBackend:
    """A transformers causal LM behind the Backend protocol."""

    name = "hf"

    def __init__(
        self, model: ResolvedModel, batch_size: int | None = None, dtype: str = "auto", device: str = "auto"
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise UsageError(f"batch size must be >= 1, got {batch_size}")
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        default_batch = DEFAULT_BATCH_GPU if self.device.type == "cuda" else DEFAULT_BATCH_CPU
        self.batch_size = batch_size or default_batch
        self.chat = ChatTokenizer(model)
        self.tokenizer = self.chat.tokenizer
        try:
            gen_eos = GenerationConfig.from_pretrained(
                self.chat.source, revision=self.chat.revision or "main"
            ).eos_token_id
        except OSError:  # no generation_config.json: the tokenizer's EOS
            gen_eos = None
        eos = gen_eos if gen_eos is not None else self.tokenizer.eos_token_id
        self.eos_ids: set[int] = set(eos) if isinstance(eos, list) else {eos}
        pad = self.tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else min(self.eos_ids)
        self.stats = EngineStats()

    @cached_property
    def model(self) -> Any:
        """The weights, loaded on first use: a fully cached rerun never loads them (load time and size in stats)."""
        started = time.perf_counter()
        loaded: Any = AutoModelForCausalLM.from_pretrained(
            self.chat.source, revision=self.chat.revision, dtype=self.dtype
        )
        if self.device.type == "cpu" and loaded.config._attn_implementation == "sdpa":
            loaded.set_attn_implementation(CPU_ATTENTION)  # GQA without KV copies (hf_decode)
        loaded = loaded.to(self.device).eval()
        self.stats.load_s = time.perf_counter() - started
        self.stats.weights_bytes = sum(p.numel() * p.element_size() for p in loaded.parameters())
        return loaded

    def fingerprint(self) -> dict[str, str]:
        """Model identity + weights hash/revision + chat-template hash + dtype (outputs differ across dtypes) +
        the sampler (sampled outputs stored by an earlier sampler are not reused)."""
        return {**self.chat.fingerprint(str(self.dtype).removeprefix("torch.")), SAMPLER_FIELD: SAMPLER_VERSION}

    def describe(self) -> dict[str, Any]:
        """Engine details recorded with a run."""
        return {
            "engine": "transformers",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "batch_size": self.batch_size,
            "threads": torch.get_num_threads(),
        }

    def generate(
        self, convs: Sequence[Conversation], params: GenParams, on_tokens: TokenCallback | None = None
    ) -> Iterator[Completion]:
        """Yield completions batch by batch (longest prompts first), n per conversation; `on_tokens` hears of every
        decode step (the tokens of the rows still generating)."""
        prompts = [self.chat.encode(c) for c in convs]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        per_batch = max(1, self.batch_size // params.n)
        stop = StopStringCriteria(self.tokenizer, list(params.stop)) if params.stop else None
        for start in range(0, len(order), per_batch):
            batch = order[start : start + per_batch]
            repeat = params.n if params.greedy else 1
            reporter = StepReporter(self.eos_ids, self.stats, on_tokens, params.max_new_tokens, repeat, stop)
            yield from self._generate_batch(batch, [prompts[i] for i in batch], params, reporter)

    def _generate_batch(
        self, indices: list[int], prompts: list[list[int]], params: GenParams, reporter: StepReporter
    ) -> Iterator[Completion]:
        # Greedy samples are identical: generate once per prompt, repeat. Sampling: n rows per prompt, each drawing
        # from its own seed (hf_sampling), so a sample does not depend on its batch.
        rows_in = prompts if params.greedy else [p for p in prompts for _ in range(params.n)]
        enc = left_pad(rows_in, self.pad_id)
        gen_kwargs: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if not params.greedy:
            seeds = [sample_seed(params.seed, p, j) for p in prompts for j in range(params.n)]
            sampler = RowSeededSampler(seeds, params.temperature, params.top_p)
            gen_kwargs["logits_processor"] = LogitsProcessorList([sampler])
        if self.device.type == "cpu":  # KV written in place (hf_decode)
            capacity = enc["input_ids"].shape[1] + params.max_new_tokens
            gen_kwargs["past_key_values"] = preallocated_cache(self.model.config, capacity)
        started = reporter.started = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=enc["input_ids"].to(self.device),
                attention_mask=enc["attention_mask"].to(self.device),
                max_new_tokens=params.max_new_tokens,
                stopping_criteria=StoppingCriteriaList([reporter]),
                pad_token_id=self.pad_id,
                eos_token_id=sorted(self.eos_ids),
                output_logits=params.logprobs > 0,
                return_dict_in_generate=params.logprobs > 0,
                **gen_kwargs,
            )
        sequences = out.sequences if params.logprobs else out
        rows = sequences[:, enc["input_ids"].shape[1] :].tolist()
        logprobs = self._logprobs(rows, out.logits, params.logprobs) if params.logprobs else None
        if params.greedy:
            rows = [row for row in rows for _ in range(params.n)]
            logprobs = logprobs and [lp for lp in logprobs for _ in range(params.n)]
        elapsed = time.perf_counter() - started
        self.stats.generate_s += elapsed
        latency = elapsed / len(rows)
        for r, row in enumerate(rows):
            i, j = divmod(r, params.n)
            text, n_tokens, reason = self._finish(row, params.stop)
            meta: dict[str, Any] = {"batch_size": len(rows)}
            if params.n > 1:
                meta["sample"] = j
            if logprobs:
                meta["logprobs"] = logprobs[r][:n_tokens]
            yield Completion(indices[i], text, len(prompts[i]), n_tokens, reason, latency, meta)

    def _logprobs(self, rows: list[list[int]], logits: tuple[Any, ...], k: int) -> list[list[dict[str, Any]]]:
        """Per row and generated position: the chosen token's log-probability and the top k (raw model scores)."""
        per_row: list[list[dict[str, Any]]] = [[] for _ in rows]
        for step, step_logits in enumerate(logits):
            logp = torch.log_softmax(step_logits.float(), dim=-1)
            top_values, top_ids = logp.topk(k, dim=-1)
            for r, row in enumerate(rows):
                if step >= len(row):
                    continue
                top = {self._token_text(t): v for t, v in zip(top_ids[r].tolist(), top_values[r].tolist(), strict=True)}
                chosen = row[step]
                per_row[r].append(asdict(TokenLogprob(self._token_text(chosen), float(logp[r, chosen]), top)))
        return per_row

    def _token_text(self, token_id: int) -> str:
        return str(self.tokenizer.decode([token_id]))

    def _finish(self, row: list[int], stop: tuple[str, ...]) -> tuple[str, int, str]:
        """(text, completion tokens, finish reason) of one generated row: cut at EOS, then at the first stop string."""
        end = next((k for k, t in enumerate(row) if t in self.eos_ids), None)
        tokens = row if end is None else row[:end]
        text = str(self.tokenizer.decode(tokens, skip_special_tokens=True))
        cuts = [p for p in (text.find(s) for s in stop) if p >= 0]
        if cuts:  # the row ended at its stop string: what follows is padding (not EOS when pad is not an EOS id)
            generated = len(tokens)
            while generated and tokens[generated - 1] == self.pad_id:
                generated -= 1
            return text[: min(cuts)], generated, "stop"
        if end is not None:
            return text, end + 1, "stop"
        return text, len(tokens), "length"
