"""The plan of the fusion examples (fast: no model): sizes, disjointness of the training prompts from every held-out
set by normalised content hash (not only by id), the 8B recipe's dry run, the sampling backend choice, and the
guard that keeps `accelerate launch` ranks to the training stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fusebench import cli
from fusebench.errors import UsageError
from fusebench_train import venv
from fusebench_train.bundle import MBPP_TEST_IDS, mbpp_text
from fusebench_train.config import load_config
from fusebench_train.disjoint import benchmark_texts, fingerprints, overlaps, strip_template
from fusebench_train.pipeline import Pipeline
from fusebench_train.plan import format_plan, make_plan
from fusebench_train.prompts import load_prompt_sets
from tests.conftest import REPO

SMALL = REPO / "examples" / "fuse-small.yaml"
BIG = REPO / "examples" / "fusechat3-llama31-8b.yaml"
SHARED_MBPP = REPO.parent / "shared" / "data" / "mbpp" / "mbpp.jsonl"


pytestmark = pytest.mark.usefixtures("train_plugin")  # as if the plugin's entry point were installed


@pytest.fixture(scope="module")
def small_prompts() -> dict[str, str]:
    """Every training and validation prompt of the small example: id -> the text it shows (template lines out)."""
    cfg = load_config(SMALL)
    out = {}
    for kind, sets in (("train", cfg.prompts), ("val", cfg.validation)):
        for spec in sets:
            for p in load_prompt_sets(cfg, [spec]):
                out[f"{kind}:{p.domain}:{p.id}"] = strip_template(p.messages[-1]["content"], spec.prompt_template)
    return out


def test_small_plan_sizes() -> None:
    plan = make_plan(load_config(SMALL), str(SMALL))
    domains = {d.domain: d for d in plan.domains}
    math, code = domains["math"], domains["code"]
    assert (math.prompts, code.prompts) == (60, 263)
    assert (math.responses, code.responses) == (60 * 2 * 2, 263 * 4 * 2)
    assert (math.sft_prompts, math.dpo_prompts, code.sft_prompts, code.dpo_prompts) == (30, 30, 184, 79)
    assert plan.validation == {"math": 100, "code": 40} and plan.validation_in_training == 0
    sft, dpo = plan.train
    assert (sft.max_examples, sft.effective_batch, sft.max_steps) == (214, 16, 14 * 2)  # 214/16 -> 14 steps/epoch
    assert (dpo.max_examples, dpo.effective_batch, dpo.max_steps) == (109, 16, 7 * 1)
    assert plan.eval_benchmarks == [("mbpp_plus", None), ("humaneval", None), ("gsm8k", 100)]
    assert plan.eval_models == ["base", "sft", "fused", "source:qwen2.5-coder-0.5b", "source:smollm2-135m"]
    assert {o.eval_set: o.train_ids for o in plan.overlaps} == {"mbpp_plus": (), "humaneval": (), "gsm8k": ()}
    text = format_plan(plan)
    for needle in ("qwen2.5-coder-0.5b-instruct-gguf", "2,104", "overlap with mbpp_plus (399 items", "gsm8k (100)"):
        assert needle in text


def test_small_prompts_are_disjoint_from_every_held_out_set(small_prompts: dict[str, str]) -> None:
    held_out = {b: benchmark_texts(b) for b in ("mbpp_plus", "humaneval", "gsm8k")}  # gsm8k: all 1,319 test items
    assert (len(held_out["mbpp_plus"]), len(held_out["humaneval"]), len(held_out["gsm8k"])) == (399, 164, 1319)
    if SHARED_MBPP.is_file():  # MBPP's test split is not bundled: checked where the shared data is
        rows = [json.loads(line) for line in SHARED_MBPP.read_text().splitlines()]
        held_out["mbpp_test"] = [mbpp_text(r) for r in rows if r["task_id"] in MBPP_TEST_IDS]
        assert len(held_out["mbpp_test"]) == 500
    assert len(small_prompts) == 60 + 263 + 100 + 40
    for o in overlaps(small_prompts, held_out):
        assert o.train_ids == (), f"{o.eval_set}: {o.train_ids[:5]}"
    # by id too: no MBPP+ task and no MBPP test-split task among the code prompts
    plus = {i.removeprefix("Mbpp/") for i in _ids("mbpp_plus")}
    code_ids = {k.rsplit(":", 1)[1] for k in small_prompts if ":code:" in k}
    assert len(code_ids) == 303 and not code_ids & plus and not {int(i) for i in code_ids} & set(MBPP_TEST_IDS)
    # validation is carved from the training sources, apart from the training prompts
    train = {k: v for k, v in small_prompts.items() if k.startswith("train:")}
    val = [v for k, v in small_prompts.items() if k.startswith("val:")]
    assert overlaps(train, {"validation": val})[0].train_ids == ()


def test_every_bundled_math_prompt_is_disjoint_from_gsm8k_test() -> None:
    """The whole bundled files, beyond the example's limit: 1,000 train and 100 validation problems."""
    data = REPO / "benchmarks" / "data" / "fuse"
    rows = {f"{name}:{i}": json.loads(line)["question"]
            for name in ("gsm8k_fuse_train", "gsm8k_fuse_val")
            for i, line in enumerate((data / f"{name}.jsonl").read_text().splitlines())}  # fmt: skip
    assert len(rows) == 1100
    assert overlaps(rows, {"gsm8k": benchmark_texts("gsm8k")})[0].train_ids == ()


def _ids(benchmark: str) -> list[str]:
    from fusebench.evaluate import load_benchmark_items
    from fusebench.spec import get_benchmark

    return [item.id for item in load_benchmark_items(get_benchmark(benchmark)).items]


def test_content_hash_catches_a_reworded_copy_that_ids_miss() -> None:
    plus = benchmark_texts("mbpp_plus")[0]  # Mbpp/2: a task line and an assert line
    task, test = [line for line in plus.splitlines() if len(line) > 20][:2]
    copy = f"{task.upper()}  \nYour code should pass this test:\n {test.replace(' ', '')}"
    other = "Write a function that reverses the words of a sentence.\nassert rev('a b') == 'b a'"
    found = overlaps({"9001": copy, "9002": other, "9003": task.rstrip(".") + "!"}, {"mbpp_plus": [plus]})[0]
    assert found.train_ids == ("9001", "9003")
    assert fingerprints("return x") & fingerprints("import math\nreturn x") == set()  # short lines do not count


def test_template_lines_are_not_content() -> None:
    template = "{text}\nYour code should pass this test:\n{test_list[0]}\nWrite the function in a ```python code block."
    a = template.format(text="Write a function to add two numbers.", test_list=["assert add(1, 2) == 3"])
    b = template.format(text="Write a function to find the longest word.", test_list=["assert longest('a bb') == 'bb'"])
    assert overlaps({"a": a}, {"b": [b]})[0].train_ids == ("a",)  # the boilerplate alone looks like a copy
    assert overlaps({"a": strip_template(a, template)}, {"b": [strip_template(b, template)]})[0].train_ids == ()


def test_big_recipe_dry_run_prints_plan_and_accelerate_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fuse-and-eval", str(BIG), "--dry-run"]) == 0
    out = capsys.readouterr().out
    for needle in (
        "target: meta-llama/Llama-3.1-8B-Instruct",
        "qwen2.5-72b-instruct: Qwen/Qwen2.5-72B-Instruct",
        "sampling: vllm, data-parallel-size 2 x tensor-parallel-size 4",
        "eval (vllm, data-parallel-size 2 x tensor-parallel-size 4 (one engine per 4 GPU(s), items sharded)): base",
        "prompt files not here yet",  # sized by their expected_rows (FuseChat-3.0's published counts):
        "instruction  80,907     5                        1,618,140    32,363         48,544",
        "sft      59,486                8            128                3.0       1,395",
        f"accelerate launch --config_file examples/accelerate/zero3.yaml -m fusebench.cli fuse sft {BIG}",
        f"accelerate launch --config_file examples/accelerate/zero3.yaml -m fusebench.cli fuse dpo {BIG}",
        f"fusebench fuse build {BIG}",
    ):
        assert needle in out, needle
    assert cli.main(["fuse", "plan", str(BIG)]) == 0
    assert capsys.readouterr().out == out


def test_big_recipe_plan_with_prompt_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = yaml.safe_load(BIG.read_text())
    counts = {"instruction": 50, "math": 30, "code": 20}
    for spec in raw["prompts"]:
        rows = [{"id": i, "task_id": i, "prompt": "p", "problem": "p", "expected_answer": "1", "test_list": []}
                for i in range(counts[spec["domain"]])]  # fmt: skip
        spec["path"] = str(tmp_path / f"{spec['domain']}.jsonl")
        Path(spec["path"]).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for stage in ("sft", "dpo"):
        for key in ("deepspeed", "accelerate_config"):
            raw[stage][key] = str(REPO / raw[stage][key])
    config = tmp_path / "big.yaml"
    config.write_text(yaml.safe_dump(raw))
    plan = make_plan(load_config(config), str(config))
    got = {d.domain: (d.prompts, d.responses, d.sft_prompts, d.dpo_prompts) for d in plan.domains}
    assert got == {  # the files' own counts, not expected_rows; 4 sources; 5/5/8 samples per prompt; 40% to SFT
        "instruction": (50, 50 * 5 * 4, 20, 30),
        "math": (30, 30 * 5 * 4, 12, 18),
        "code": (20, 20 * 8 * 4, 8, 12),
    }
    sft, dpo = plan.train
    assert (sft.processes, sft.effective_batch, sft.max_examples, sft.max_steps) == (8, 128, 40, 3)
    assert (dpo.processes, dpo.effective_batch, dpo.max_examples, dpo.max_steps) == (8, 128, 60, 1)


def test_backend_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(venv.importlib.util, "find_spec", lambda name: None)  # no vLLM in this interpreter
    monkeypatch.setattr(venv, "__file__", str(tmp_path / "pkg" / "fusebench_train" / "venv.py"))
    monkeypatch.chdir(tmp_path)
    assert venv.choose_backend("auto") == "hf"
    python = tmp_path / ".venv-vllm" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert venv.choose_backend("auto") == "vllm-venv" and venv.vllm_venv() == tmp_path / ".venv-vllm"
    plan = format_plan(make_plan(load_config(SMALL), str(SMALL)))  # fuse-small: sampling and eval both on auto
    assert plan.count("vllm (run in .venv-vllm)") == 2
    monkeypatch.setattr(venv.importlib.util, "find_spec", lambda name: object())  # vLLM importable here
    assert venv.choose_backend("auto") == "vllm"
    assert venv.choose_backend("hf") == "hf"


def test_accelerate_ranks_run_only_training_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "8")
    cfg = load_config(SMALL, work_dir=str(tmp_path / "w"))
    with pytest.raises(UsageError, match=r"stage sample runs in one process \(this is rank 1 of 8\).*fuse build"):
        Pipeline(cfg, log=lambda msg: None).run(until="sft")
    assert not (tmp_path / "w" / "manifest.json").exists()
