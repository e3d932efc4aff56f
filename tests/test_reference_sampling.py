"""The judged benchmarks' answers are sampled as FuseEval samples them, item by item.

Expected settings, written out from FuseEval (SLIT-AI/FuseChat-3.0 @ 5af2badb, FuseEval/IF-Eval):
- AlpacaEval-2: generate.sh builds every model's config from configs/llama-3-alpacaeval.yaml: temperature 0.6,
  top-p 0.9, max_new_tokens 4096 (its presence/frequency penalties are not passed on by its vllm_local_completions);
- Arena-Hard: configs/*-arenahard.yaml: temperature 0, top-p 1.0, 4096 (arena-hard-auto's gen_answer likewise);
- MT-Bench: gen_model_answer_vllm.py: FastChat's common.py temperature_config per category, max_tokens 4096;
- AlignBench: get_answers.py temp_config per category (0.1 / 0.7, as AlignBench's config/temperature.json),
  max_tokens 4096.
"""

from __future__ import annotations

from collections import Counter

import pytest

from fusebench.evaluate import EvalConfig, plan_benchmarks
from tests.conftest import SHARED_DATA

FASTCHAT_TEMPERATURE = {
    "writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
    "stem": 0.1, "humanities": 0.1,
}  # fmt: skip
ALIGNBENCH_TEMPERATURE = {
    "专业能力": 0.1, "数学计算": 0.1, "基本任务": 0.1, "逻辑推理": 0.1, "中文理解": 0.1,
    "文本写作": 0.7, "角色扮演": 0.7, "综合问答": 0.7,
}  # fmt: skip


def _settings(benchmark: str) -> list[tuple[str, float, float, int]]:
    """(category or "", temperature, top_p, max_new_tokens) of every item, as a run would ask for it."""
    (planned,) = plan_benchmarks(EvalConfig(benchmarks=[benchmark], progress=False))
    out = []
    for item in planned.data.items:
        p = planned.params_for(item)
        out.append((str(item.row.get("category", "")), p.temperature, p.top_p, p.max_new_tokens))
    return out


def test_alpaca_eval_samples_as_fuseeval_llama_config() -> None:
    settings = _settings("alpaca_eval2")
    assert len(settings) == 805 and {s[1:] for s in settings} == {(0.6, 0.9, 4096)}


def test_arena_hard_answers_greedily_up_to_4096_tokens() -> None:
    settings = _settings("arena_hard")
    assert len(settings) == 500 and {s[1:] for s in settings} == {(0.0, 1.0, 4096)}


def test_mt_bench_temperature_per_category_and_4096_tokens() -> None:
    settings = _settings("mt_bench")
    assert len(settings) == 80
    assert {(c, t, p, m) for c, t, p, m in settings} == {(c, FASTCHAT_TEMPERATURE[c], 1.0, 4096) for c, *_ in settings}
    assert Counter(t for _, t, _, _ in settings) == {0.0: 40, 0.7: 20, 0.1: 20}


@pytest.mark.shared_data("alignbench", "data_v1.1_release.jsonl")
def test_alignbench_temperature_per_category_and_4096_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSEBENCH_ALIGNBENCH_DIR", str(SHARED_DATA / "alignbench"))
    settings = _settings("alignbench")
    assert len(settings) == 683
    assert all(t == ALIGNBENCH_TEMPERATURE[c] and (p, m) == (1.0, 4096) for c, t, p, m in settings)
    assert Counter(t for _, t, _, _ in settings) == {0.1: 454, 0.7: 229}
