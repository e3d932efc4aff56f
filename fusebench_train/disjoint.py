"""Training prompts against held-out evaluation sets: overlap by normalised content hash, not only by id.

A text's fingerprints are the hash of the whole normalised text and of each normalised line long enough to
be specific (a task description, a test assertion, a word problem): a training prompt that shares any of them
with an evaluation item overlaps it, whatever either side's id says. Normalising lower-cases and keeps only
letters and digits, so whitespace, punctuation and quoting differences do not hide a copy.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MIN_LINE_CHARS = 20  # shorter normalised lines ("return x", "import math") are not specific enough; longer
# ones are, on the conservative side: "assert count_Unset_Bits(2) == 1" (27) marks an MBPP test-split near-copy
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    """Lower-case letters and digits, single spaces between runs."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def fingerprints(text: str) -> set[str]:
    """Hashes of the whole normalised text and of its specific lines."""
    out = set()
    whole = normalise(text)
    if whole:
        out.add(_digest(whole))
    for line in text.splitlines():
        norm = normalise(line)
        if len(norm) >= MIN_LINE_CHARS:
            out.add(_digest(norm))
    return out


@dataclass(frozen=True)
class Overlap:
    """Training items that share a fingerprint with an evaluation set."""

    eval_set: str
    eval_items: int
    train_ids: tuple[str, ...]


def index(items: Iterable[str]) -> set[str]:
    """Every fingerprint of a collection of texts."""
    out: set[str] = set()
    for text in items:
        out |= fingerprints(text)
    return out


def overlaps(train: Mapping[str, str], eval_sets: Mapping[str, list[str]]) -> list[Overlap]:
    """Per evaluation set (name -> item texts), the training items (id -> text) sharing a fingerprint with it."""
    train_prints = {tid: fingerprints(text) for tid, text in train.items()}
    result = []
    for name, texts in eval_sets.items():
        held_out = index(texts)
        hit = tuple(tid for tid, prints in train_prints.items() if prints & held_out)
        result.append(Overlap(name, len(texts), hit))
    return result


def strip_template(text: str, template: str | None) -> str:
    """`text` without the lines a prompt template adds to every prompt (its lines with no field), which would
    otherwise make every pair of prompts of one set look alike."""
    if not template:
        return text
    fixed = {normalise(line) for line in template.splitlines() if "{" not in line}
    return "\n".join(line for line in text.splitlines() if normalise(line) not in fixed)


def benchmark_texts(benchmark: str) -> list[str]:
    """The inputs of a fusebench benchmark's items (its whole bundled or cached data set)."""
    from fusebench.plan import load_benchmark_items
    from fusebench.spec import get_benchmark

    return [item.input for item in load_benchmark_items(get_benchmark(benchmark)).items]
