"""Code verdicts: fusebench's scorers vs the reference harnesses' rules, on the same real answers.

The reference harnesses run model code outside any sandbox, so their rules are rebuilt here and the programs they
would run are run in fusebench's sandbox (in-process mode, one program per answer, the scorer's limits):
- human-eval (openai/human-eval `execution.py` `check_correctness`): the program is
  prompt + completion + "\\n" + test + "\\n" + "check(entry_point)"; passed iff it runs to the end. The completion
  is the code fusebench extracted from the answer (a whole function then redefines the prompt's stub).
- solution alone (EvalPlus runs the sanitized solution without the prompt): solution + test + check(entry_point),
  HumanEval's own tests standing in for EvalPlus's base inputs (which are the same calls).
- EvalPlus's own checker (`evalplus.eval.unsafe_execute`, from an evalplus installed in another venv, given with
  --evalplus-site): its input decoding (`mbpp_deserialize_inputs`), ground truth (`trusted_exec` of the
  canonical solution, outputs-not-None tasks included), time limits (max(1 s, 4 x the canonical run)), special
  oracles and float tolerance decide base and plus on MBPP+; the whole check runs inside one sandboxed program per
  answer (EvalPlus's own guard is not a sandbox), which prints the verdicts on its stdout.
- MBPP's own asserts (the `assertion` field of EvalPlus's MbppPlus rows, i.e. the original MBPP tests): the
  solution followed by the asserts, against fusebench's `mbpp_base` (EvalPlus's rule: outputs equal the canonical
  solution's on `base_input`).

    python perf/code_verdict_agreement.py --humaneval humaneval_reference.json      # perf/reference_humaneval.py --out
    python perf/code_verdict_agreement.py --store fuse-work/small/fusebench.db --runs RUN [RUN ...] \
        [--evalplus-site /tmp/evp/lib/python3.11/site-packages]   # pip install evalplus==0.3.1 numpy there

Prints per set: answers, passed under each rule, agreement (same verdict / all), each disagreement with the
reasons; finishes with `seconds: ...` (the sandbox runs).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusebench.data import load_items
from fusebench.keys import stable_hash
from fusebench.sandbox import Limits, Program, run_many
from fusebench.scorers.base import ScoreInput
from fusebench.scorers.code import HUMANEVAL_LIMITS, MBPP_LIMITS, extract_code, score_many
from fusebench.scorers.sanitize import answer_text
from fusebench.spec import get_benchmark
from fusebench.store import Store


def human_eval_program(item: dict[str, Any], completion: str) -> str:
    """What human-eval's check_correctness executes for a completion."""
    return item["prompt"] + completion + "\n" + item["test"] + "\n" + f"check({item['entry_point']})"


def solution_alone_program(item: dict[str, Any], solution: str) -> str:
    """The solution without the prompt before it, then HumanEval's tests."""
    return solution + "\n" + item["test"] + "\n" + f"check({item['entry_point']})"


def mbpp_asserts_program(item: dict[str, Any], solution: str) -> str:
    """The solution followed by the row's original MBPP asserts."""
    return solution + "\n" + item["assertion"] + "\n"


EVALPLUS_CHECK = """
import json, os, sys, tempfile
os.environ["EVALPLUS_MAX_MEMORY_BYTES"] = "-1"  # the sandbox's rlimits hold; EvalPlus may not raise them
tempfile.tempdir = os.getcwd()  # the scratch directory: the only writable place
sys.path.insert(0, {site!r})
from evalplus.config import DEFAULT_GT_TIME_LIMIT_FACTOR, DEFAULT_MIN_TIME_LIMIT
from evalplus.data.mbpp import mbpp_deserialize_inputs
from evalplus.eval import _SUCCESS, unsafe_execute
from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS
from evalplus.gen.util import trusted_exec

class Box:
    def __init__(self, value):
        self.value = value

task, suite = json.loads({task!r}), {suite!r}
inputs = mbpp_deserialize_inputs(task["task_id"], task[suite + "_input"] or [])
expected, times = trusted_exec(task["prompt"] + task["canonical_solution"], inputs, task["entry_point"],
                               record_time=True, output_not_none=task["entry_point"] in MBPP_OUTPUT_NOT_NONE_TASKS)
limits = [max(DEFAULT_MIN_TIME_LIMIT, DEFAULT_GT_TIME_LIMIT_FACTOR * t) for t in times]
stat, details, progress = Box(-1), [False] * len(inputs), Box(0)
unsafe_execute("mbpp", task["entry_point"], {code!r}, inputs, expected, limits, task["atol"], True,
               stat, details, progress)  # its reliability_guard disables os functions: one suite per process
passed = stat.value == _SUCCESS and progress.value == len(inputs) and all(details)
sys.__stdout__.write("EVALPLUS " + json.dumps(passed) + "\\n")
sys.__stdout__.flush()
"""


def evalplus_verdicts(
    site: str, rows: Sequence[dict[str, Any]], codes: Sequence[str], cache: dict[str, Any] | None = None
) -> list[tuple[bool, str]]:
    """EvalPlus's plus verdict (base and plus inputs pass) per answer, its checker run in the sandbox; `cache`
    (task id + code -> per-suite verdicts) spares reruns."""
    cache = {} if cache is None else cache
    keys = [stable_hash([r["task_id"], c]) for r, c in zip(rows, codes, strict=True)]
    jobs = [(k, r, c, suite) for k, r, c in zip(keys, rows, codes, strict=True) for suite in ("base", "plus")]
    todo = [job for job in jobs if job[3] not in cache.get(job[0], {})]
    programs = [Program(EVALPLUS_CHECK.format(site=site, task=json.dumps(r), suite=s, code=c)) for _, r, c, s in todo]
    for (key, _, _, suite), o in zip(
        todo, run_many(programs, Limits(wall_s=300.0, memory_mb=8192, nproc=256)), strict=True
    ):
        line = next((x for x in o.stdout.splitlines() if x.startswith("EVALPLUS ")), None)
        verdict = json.loads(line.removeprefix("EVALPLUS ")) if line else f"no verdict: {o.status}: {o.reason[:200]}"
        cache.setdefault(key, {})[suite] = verdict
    missing = sum(not isinstance(v, bool) for k in keys for v in cache[k].values())
    if missing:
        print(f"  EvalPlus checker: {missing} runs gave no verdict (counted as failed)")
    return [
        (cache[k]["base"] is True and cache[k]["plus"] is True, f"base {cache[k]['base']}, plus {cache[k]['plus']}")
        for k in keys
    ]


def _report(name: str, ours: Sequence[bool], rules: dict[str, list[tuple[bool, str]]], ids: Sequence[str]) -> None:
    print(f"{name}: {len(ours)} answers, fusebench passes {sum(ours)}")
    for rule, verdicts in rules.items():
        same = sum(o == v for o, (v, _) in zip(ours, verdicts, strict=True))
        print(f"  {rule}: passes {sum(v for v, _ in verdicts)}, agreement {same}/{len(ours)}")
        for i, (o, (v, reason)) in enumerate(zip(ours, verdicts, strict=True)):
            if o != v:
                print(f"    {ids[i]}: fusebench {'pass' if o else 'fail'}, {rule} {'pass' if v else 'fail'} ({reason})")


def _run(sources: Sequence[str], limits: Any) -> list[tuple[bool, str]]:
    outcomes = run_many([Program(code) for code in sources], limits)
    return [(o.passed, o.status if o.passed else f"{o.status}: {o.reason[:80]}") for o in outcomes]


def humaneval_agreement(path: str) -> None:
    """The answers of perf/reference_humaneval.py (every side and answer mode it scored)."""
    spec = get_benchmark("humaneval")
    items = {item.id: item for item in load_items(spec).items}
    modes = {"code block": "completion", "sanitized": "humaneval", "raw": "humaneval_raw"}
    for side, record in json.loads(Path(path).read_text()).items():
        for name, values in record["scores"].items():
            rows = [items[o["id"]].row for o in record["outputs"]]
            mode = get_benchmark(modes[name]) if modes[name] != "completion" else None
            codes = []
            for row, out in zip(rows, record["outputs"], strict=True):
                text = out["text"] if mode is None else answer_text(mode, row, out["text"])
                codes.append(extract_code(text, row["entry_point"]))
            rules = {
                "human-eval rule": _run([human_eval_program(r, c) for r, c in zip(rows, codes, strict=True)],
                                        HUMANEVAL_LIMITS),
                "solution alone": _run([solution_alone_program(r, c) for r, c in zip(rows, codes, strict=True)],
                                       HUMANEVAL_LIMITS),
            }  # fmt: skip
            ids = [o["id"] for o in record["outputs"]]
            _report(f"HumanEval {side} ({name})", [v == 1.0 for v in values], rules, ids)


def mbpp_agreement(store_url: str, run_ids: Sequence[str], evalplus_site: str | None, cache_path: str | None) -> None:
    """The stored mbpp_plus answers of these runs: fusebench's plus verdict vs EvalPlus's checker (when given);
    fusebench's base verdict vs MBPP's own asserts."""
    store = Store(store_url)
    items = {item.id: item for item in load_items(get_benchmark("mbpp_plus")).items}
    for run_id in run_ids:
        scores = store.get_scores(run_id, "mbpp_plus")
        rows = [items[s["sample_id"]].row for s in scores]
        codes = [s["extracted"] for s in scores]
        ours = score_many([ScoreInput(c, r["entry_point"], r) for c, r in zip(codes, rows, strict=True)], "mbpp_base")
        rules = {"MBPP asserts": _run([mbpp_asserts_program(r, c) for r, c in zip(rows, codes, strict=True)],
                                      MBPP_LIMITS)}  # fmt: skip
        ids = [s["sample_id"] for s in scores]
        _report(f"MBPP base, run {run_id}", [s.value == 1.0 for s in ours], rules, ids)
        if evalplus_site:
            plus = [float(s["score"]) == 1.0 for s in scores]
            cache = json.loads(Path(cache_path).read_text()) if cache_path and Path(cache_path).exists() else {}
            checked = evalplus_verdicts(evalplus_site, rows, codes, cache)
            if cache_path:
                Path(cache_path).write_text(json.dumps(cache))
            _report(f"MBPP+, run {run_id}", plus, {"EvalPlus checker": checked}, ids)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--humaneval", help="the JSON written by perf/reference_humaneval.py --out")
    parser.add_argument("--store", help="a results store (file path) whose runs scored mbpp_plus")
    parser.add_argument("--runs", nargs="*", default=[])
    parser.add_argument("--evalplus-site", help="site-packages of a venv with evalplus 0.3.1 and numpy")
    parser.add_argument("--evalplus-cache", help="a JSON file keeping EvalPlus's verdicts between runs")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.humaneval:
        humaneval_agreement(args.humaneval)
    if args.store:
        mbpp_agreement(f"sqlite:///{args.store}", args.runs, args.evalplus_site, args.evalplus_cache)
    print(f"seconds: {time.perf_counter() - started:.1f}")


if __name__ == "__main__":
    main()
