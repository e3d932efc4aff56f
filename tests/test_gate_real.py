"""compare / diff / history / gate / report on stored runs of the real default model (issue 4's "Done means").

The bundled SmolLM2-135M scores ~0 on GSM8K and MATH, where a worse candidate could not drop. So the
runs use a small benchmark of one-step arithmetic questions it does answer right at 64 new tokens (found
by running it once; it answers in one sentence, so generation stops at the first newline), in a private
benchmarks folder (FUSEBENCH_BENCHMARKS). The candidate gets 2 new tokens, too few to reach any number;
the rerun regenerates (--no-cache) with the base's settings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fusebench.store import Store
from tests.conftest import cli_env, run_cli

PEOPLE = [("Tom", "he"), ("Anna", "she"), ("Ben", "he"), ("Mia", "she"), ("Sam", "he"), ("Lily", "she"),
          ("Joe", "he"), ("Eva", "she"), ("Max", "he"), ("Zoe", "she"), ("Leo", "he"), ("Amy", "she")]  # fmt: skip
OBJECTS = ["apples", "pens", "books", "marbles", "cars", "stickers", "balls", "shells", "kites", "cookies", "coins",
           "flowers"]  # fmt: skip
PAIRS = [(2, 3), (4, 2), (5, 1), (1, 1), (6, 2), (3, 3), (4, 4), (2, 5), (7, 1), (3, 2), (8, 1), (2, 2), (1, 3),
         (5, 2), (3, 4), (6, 3), (2, 6), (4, 1), (5, 5), (1, 4), (3, 5), (7, 2), (4, 3), (2, 4)]  # fmt: skip
# 24 one-step additions; the default model gets 10-12 right (bf16 or fp32), each in one sentence
QUESTIONS = [
    (f"{name} has {a} {obj} and buys {b} more. How many {obj} does {pronoun} have now?", str(a + b))
    for i, (a, b) in enumerate(PAIRS)
    for name, pronoun in [PEOPLE[i % 12]]
    for obj in [OBJECTS[(i * 5) % 12]]
]

SPEC = """\
id: arith
version: 1
category: math
description: One-step additions the bundled model often answers right (gate test).
data:
  path: data/arith/test.jsonl
  input_field: question
  target_field: answer
prompt:
  system: "Please reason step by step, and put your final answer within \\\\boxed{}."
  user: "{input}"
generation: {max_new_tokens: 64, temperature: 0.0, stop: ["\\n"]}
scorer: math
metric: accuracy
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "benchmarks"
    (root / "data" / "arith").mkdir(parents=True)
    (root / "arith.yaml").write_text(SPEC)
    lines = [json.dumps({"question": q, "answer": a}) for q, a in QUESTIONS]
    (root / "data" / "arith" / "test.jsonl").write_text("\n".join(lines) + "\n")
    return cli_env(FUSEBENCH_BENCHMARKS=str(root))


def _eval(env: dict[str, str], out: Path, *extra: str) -> str:
    before = {r["id"] for r in Store(f"sqlite:///{out / 'fusebench.db'}").list_runs()} if out.exists() else set()
    done = run_cli("eval", "--benchmarks", "arith", "--no-progress", "--output-dir", str(out), *extra, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    (new,) = {r["id"] for r in Store(f"sqlite:///{out / 'fusebench.db'}").list_runs()} - before
    return new


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_truncated_candidate_fails_the_gate_and_an_identical_rerun_passes(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    base = _eval(env, out, "--tag", "family=arith-gate", "--tag", "step=100")
    cand = _eval(env, out, "--max-new-tokens", "2", "--tag", "family=arith-gate", "--tag", "step=200")
    rerun = _eval(env, out, "--no-cache")
    store = Store(f"sqlite:///{out / 'fusebench.db'}")
    right = {run: {s["sample_id"]: s["score"] for s in store.get_scores(run, "arith")} for run in (base, cand, rerun)}
    n = len(QUESTIONS)
    assert all(len(v) == n for v in right.values())
    base_right = sum(right[base].values())
    # McNemar needs 6 right->wrong flips (and no other change) for p < 0.05
    assert base_right >= 6, f"the base model answered only {base_right}/{n} right: the premise of this test broke"
    assert sum(right[cand].values()) == 0  # 2 tokens cannot hold an answer
    assert right[rerun] == right[base]  # greedy decoding regenerates the same answers
    stored = {r["id"]: r["model"] for r in store.list_runs()}
    assert stored[base] == stored[cand] == stored[rerun]

    store_args = ("--output-dir", str(out))
    compared = run_cli("compare", base, cand, "--format", "json", *store_args, env=env)
    assert compared.returncode == 0, compared.stderr
    (row,) = [r for r in json.loads(compared.stdout)["rows"] if r["benchmark"] == "arith"]
    assert row["scores"] == pytest.approx([100 * base_right / n, 0.0])
    # the paired delta over the shared items: mean of per-item differences, in points
    assert row["deltas"][0]["delta"]["estimate"] == pytest.approx(-100 * base_right / n)
    assert row["deltas"][0]["n_shared"] == n and row["deltas"][0]["test"] == "mcnemar"
    terminal = run_cli("compare", base, cand, *store_args, env=env)
    assert terminal.returncode == 0 and f"{-100 * base_right / n:+.2f}" in terminal.stdout
    assert "max_new_tokens 64 vs 2" in terminal.stdout  # the mismatched setting is flagged

    failed = run_cli("gate", cand, "--baseline", base, *store_args, env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert re.search(r"arith.*dropped", failed.stdout), failed.stdout
    passed = run_cli("gate", rerun, "--baseline", base, *store_args, env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    flipped = run_cli("diff", base, cand, "--benchmark", "arith", *store_args, env=env)
    assert flipped.returncode == 0 and f"right->wrong {int(base_right)}," in flipped.stdout
    history = run_cli("history", "arith-gate", *store_args, env=env)
    assert history.returncode == 0 and "step 100" in history.stdout and "step 200" in history.stdout
    report = run_cli("report", base, cand, "-o", str(tmp_path / "r.html"), *store_args, env=env)
    assert report.returncode == 0 and "arith" in (tmp_path / "r.html").read_text()
