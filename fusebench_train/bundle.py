"""Rebuild the bundled prompt sets of examples/fuse-small.yaml from the original MBPP and GSM8K files.

    python -m fusebench_train.bundle MBPP_JSONL GSM8K_TRAIN_JSONL OUT_DIR

Code: MBPP's train, validation and prompt splits (task_id 1-10 and 511-974), minus every task in MBPP+ (by id)
and minus any task sharing a normalised content hash (fusebench_train.disjoint) with MBPP+, HumanEval, GSM8K test
or MBPP's test split (task_id 11-510); a seeded hash of the task id carves out the validation prompts.
Math: GSM8K train lines in file order (byte-identical), the first ones for training, the next for validation,
skipping any that share a content hash with GSM8K test. Held-out sets are read from fusebench's bundled data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from fusebench_train.disjoint import benchmark_texts, fingerprints, index

MBPP_TEST_IDS = range(11, 511)
CODE_VAL = 40
MATH_TRAIN = 1000
MATH_VAL = 100
SEED = "fuse-small"


def mbpp_text(row: dict[str, Any]) -> str:
    """The content of an MBPP row that a prompt shows: the task and its tests."""
    return "\n".join([row["text"], *row["test_list"]])


def _val_order(task_id: int) -> str:
    return hashlib.sha256(f"{SEED}\0{task_id}".encode()).hexdigest()


def code_sets(mbpp_rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(train rows, validation rows, tasks dropped for a content overlap) of the MBPP code prompts."""
    plus_ids = {int(t.removeprefix("Mbpp/")) for t in _plus_ids()}
    held_out = index(benchmark_texts("mbpp_plus") + benchmark_texts("humaneval") + benchmark_texts("gsm8k"))
    held_out |= index(mbpp_text(r) for r in mbpp_rows if r["task_id"] in MBPP_TEST_IDS)
    candidates = [r for r in mbpp_rows if r["task_id"] not in MBPP_TEST_IDS and r["task_id"] not in plus_ids]
    kept = [r for r in candidates if not fingerprints(mbpp_text(r)) & held_out]
    val_ids = set(sorted((r["task_id"] for r in kept), key=_val_order)[:CODE_VAL])
    train = [r for r in kept if r["task_id"] not in val_ids]
    val = [r for r in kept if r["task_id"] in val_ids]
    return train, val, len(candidates) - len(kept)


def _plus_ids() -> list[str]:
    from fusebench.plan import load_benchmark_items
    from fusebench.spec import get_benchmark

    return [item.id for item in load_benchmark_items(get_benchmark("mbpp_plus")).items]


def math_sets(train_lines: list[str]) -> tuple[list[str], list[str], int]:
    """(train lines, validation lines, lines skipped for a content overlap with GSM8K test)."""
    held_out = index(benchmark_texts("gsm8k"))
    kept, skipped = [], 0
    for line in train_lines:
        if fingerprints(json.loads(line)["question"]) & held_out:
            skipped += 1
            continue
        kept.append(line)
        if len(kept) == MATH_TRAIN + MATH_VAL:
            break
    return kept[:MATH_TRAIN], kept[MATH_TRAIN:], skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mbpp", type=Path, help="MBPP's mbpp.jsonl (all 974 tasks)")
    parser.add_argument("gsm8k_train", type=Path, help="GSM8K's train.jsonl")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    mbpp_rows = [json.loads(line) for line in args.mbpp.read_text(encoding="utf-8").splitlines()]
    code_train, code_val, code_dropped = code_sets(mbpp_rows)
    lines = args.gsm8k_train.read_text(encoding="utf-8").splitlines()
    math_train, math_val, math_skipped = math_sets(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("mbpp_fuse_train", code_train), ("mbpp_fuse_val", code_val)):
        (args.out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for name, text_lines in (("gsm8k_fuse_train", math_train), ("gsm8k_fuse_val", math_val)):
        (args.out / f"{name}.jsonl").write_text("".join(line + "\n" for line in text_lines), encoding="utf-8")
    print(f"code: {len(code_train)} train, {len(code_val)} validation, {code_dropped} dropped (content overlap)")
    print(f"math: {len(math_train)} train, {len(math_val)} validation, {math_skipped} skipped (content overlap)")


if __name__ == "__main__":
    main()
