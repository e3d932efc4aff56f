"""Selection rules of the fusion plugin on hand-made scored samples (no model), and config validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusebench.errors import UsageError
from fusebench_train.config import load_config, parse_config
from fusebench_train.select import Scored, build, build_stats, format_stats, select_pairs, select_sft, split_prompts
from tests.conftest import minimal_fuse_config

REPO = Path(__file__).resolve().parent.parent
BAND = (0.01, 0.1)


def r(
    pid: str, source: str, index: int, score: float, correct: bool | None, domain: str = "math", n: int = 10
) -> Scored:
    return Scored(pid, domain, source, index, f"{pid}/{source}/{index}", score, correct, n)


# --- SFT ------------------------------------------------------------------------------------------------------


def test_sft_takes_the_top_correct_response_across_sources_and_drops_all_wrong_prompts() -> None:
    responses = [
        r("p1", "a", 0, 0.0, False),
        r("p1", "a", 1, 1.0, True, n=50),
        r("p1", "b", 0, 1.0, True, n=20),  # correct and shorter: wins the tie on score
        r("p2", "a", 0, 0.0, False),
        r("p2", "b", 0, 0.0, False),  # every response fails: prompt dropped
    ]
    chosen = select_sft(responses)
    assert [(c.prompt_id, c.source, c.index) for c in chosen] == [("p1", "b", 0)]


def test_sft_on_reward_scores_takes_the_highest_reward() -> None:
    responses = [r("q", "a", 0, 0.3, None, "instruction"), r("q", "b", 1, 0.9, None, "instruction")]
    assert select_sft(responses)[0].source == "b"


# --- DPO ------------------------------------------------------------------------------------------------------


def test_verifiable_pairs_are_correct_vs_incorrect_from_one_source() -> None:
    responses = [
        r("p", "a", 0, 1.0, True),  # source a: only correct -> no pair
        r("p", "a", 1, 1.0, True),
        r("p", "b", 0, 1.0, True, n=30),
        r("p", "b", 1, 0.0, False),
        r("p", "c", 0, 0.0, False),  # source c: only wrong -> no pair
    ]
    pairs = select_pairs(responses, BAND, pairs_per_prompt=5)
    assert len(pairs) == 1
    (pair,) = pairs
    assert pair.source == pair.chosen.source == pair.rejected.source == "b"
    assert pair.chosen.correct is True and pair.rejected.correct is False


def test_reward_pairs_kept_only_inside_the_gap_band() -> None:
    inside = [r("in", "a", 0, 0.50, None, "instruction"), r("in", "a", 1, 0.55, None, "instruction")]
    too_wide = [r("wide", "a", 0, 0.1, None, "instruction"), r("wide", "a", 1, 0.9, None, "instruction")]
    too_close = [r("close", "a", 0, 0.500, None, "instruction"), r("close", "a", 1, 0.505, None, "instruction")]
    pairs = select_pairs(inside + too_wide + too_close, BAND)
    assert [p.prompt_id for p in pairs] == ["in"]
    assert pairs[0].chosen.index == 1 and pairs[0].gap == pytest.approx(0.05)


def test_reward_pairs_never_mix_sources() -> None:
    # across sources the gap 0.05 would fit the band, within each source there is a single response
    responses = [r("x", "a", 0, 0.50, None, "instruction"), r("x", "b", 0, 0.55, None, "instruction")]
    assert select_pairs(responses, BAND) == []


def test_one_pair_per_prompt_prefers_the_source_with_the_best_chosen() -> None:
    responses = [
        r("p", "a", 0, 0.60, None, "instruction"),
        r("p", "a", 1, 0.55, None, "instruction"),
        r("p", "b", 0, 0.80, None, "instruction"),
        r("p", "b", 1, 0.75, None, "instruction"),
    ]
    assert [p.source for p in select_pairs(responses, BAND, 1)] == ["b"]
    assert sorted(p.source for p in select_pairs(responses, BAND, 2)) == ["a", "b"]


# --- split and build ------------------------------------------------------------------------------------------


def test_split_is_4_to_6_per_domain_and_stable_when_prompts_are_added() -> None:
    domains = {f"i{k}": "instruction" for k in range(50)} | {f"m{k}": "math" for k in range(10)}
    side = split_prompts(domains, {"instruction": 0.4, "math": 0.4}, seed=0)
    assert sum(side[f"i{k}"] == "sft" for k in range(50)) == 20
    assert sum(side[f"m{k}"] == "sft" for k in range(10)) == 4
    assert split_prompts(domains, {"instruction": 0.4, "math": 0.4}, seed=0) == side
    assert split_prompts(domains, {"instruction": 0.4, "math": 0.4}, seed=1) != side


scored_strategy = st.lists(
    st.builds(
        Scored,
        prompt_id=st.sampled_from([f"p{i}" for i in range(8)]),
        domain=st.just("math"),
        source=st.sampled_from(["a", "b", "c"]),
        index=st.integers(0, 7),
        text=st.just("t"),
        score=st.just(0.0),
        correct=st.booleans(),
        n_tokens=st.integers(1, 100),
    ).map(lambda s: Scored(**{**s.__dict__, "score": 1.0 if s.correct else 0.0})),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(scored_strategy, st.integers(0, 3))
def test_build_invariants(responses: list[Scored], seed: int) -> None:
    result = build(responses, {"math": 0.4}, BAND, pairs_per_prompt=1, seed=seed)
    sft_prompts = {p for p, s in result.side.items() if s == "sft"}
    assert {c.prompt_id for c in result.sft} <= sft_prompts
    assert all(c.correct for c in result.sft)
    assert len({c.prompt_id for c in result.sft}) == len(result.sft)
    for pair in result.pairs:
        assert pair.prompt_id not in sft_prompts
        assert pair.chosen.source == pair.rejected.source == pair.source
        assert pair.chosen.prompt_id == pair.rejected.prompt_id == pair.prompt_id
        assert pair.chosen.correct is True and pair.rejected.correct is False
    # every DPO prompt with a source that has both a correct and a wrong answer yields a pair
    expected = {
        x.prompt_id
        for x in responses
        if x.prompt_id not in sft_prompts
        and any(y.correct for y in responses if (y.prompt_id, y.source) == (x.prompt_id, x.source))
        and any(not y.correct for y in responses if (y.prompt_id, y.source) == (x.prompt_id, x.source))
    }
    assert {p.prompt_id for p in result.pairs} == expected


def test_stats_count_pairs_per_domain_and_source_and_length_ratio() -> None:
    responses = [
        r("p1", "a", 0, 1.0, True, n=10),
        r("p1", "a", 1, 0.0, False, n=40),
        r("p2", "b", 0, 1.0, True, n=30),
        r("p2", "b", 1, 0.0, False, n=10),
    ]
    result = build(responses, {"math": 0.0}, BAND)
    stats = build_stats(result, responses)
    assert stats["dpo_by_domain_source"] == {"math": {"a": 1, "b": 1}}
    assert stats["chosen_rejected_length_ratio"] == pytest.approx((10 / 40 + 30 / 10) / 2)
    assert stats["verifiable_pairs"] == 2 and stats["reward_gap_histogram"] == []  # no reward-model pair
    assert stats["accuracy_by_source"] == {"a": 0.5, "b": 0.5}
    text = format_stats(stats)
    assert "DPO pairs: 2" in text and "length ratio: 1.62" in text


def test_gap_histogram_covers_the_band_for_reward_model_pairs() -> None:
    responses = [
        r(p, "a", i, s, None, "instruction") for p, gap in [("x", 0.02), ("y", 0.05), ("z", 0.09)] for i, s in
        enumerate([0.5, 0.5 + gap])
    ]  # fmt: skip
    result = build(responses, {"instruction": 0.0}, BAND)
    histogram = build_stats(result, responses, BAND, bins=3)["reward_gap_histogram"]
    assert [h["count"] for h in histogram] == [1, 1, 1]
    assert histogram[0]["low"] == pytest.approx(0.01) and histogram[-1]["high"] == pytest.approx(0.1)


# --- config ---------------------------------------------------------------------------------------------------


def test_config_defaults_are_the_paper_settings(tmp_path: Path) -> None:
    cfg = parse_config(minimal_fuse_config(tmp_path))
    assert cfg.sample.samples_per_prompt == {"instruction": 5, "math": 5, "code": 8}
    assert (cfg.sample.temperature, cfg.sample.top_p) == (0.8, 0.95)
    assert cfg.build.reward_gap == (0.01, 0.1) and cfg.build.sft_fraction["instruction"] == 0.4
    assert cfg.dpo.get("loss_type") == "sigmoid_norm" and cfg.dpo.get("precompute_ref_log_probs")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"sample": {"temperature": "hot"}}, "sample.temperature: expected float"),
        ({"sample": {"temprature": 0.8}}, "unknown key 'temprature'"),
        ({"build": {"reward_gap": [0.2, 0.1]}}, "build.reward_gap"),
        ({"sources": []}, "at least one source"),
        ({"dpo": {"loss_type": "kto"}}, "dpo.loss_type"),
        ({"eval": {"benchmarks": None}}, "exactly one of suite and benchmarks"),
        ({"eval": {"benchmarks": ["gsm8k"], "suite": "demo"}}, "exactly one of suite and benchmarks"),
        ({"target": None}, "target: expected str"),
        ({"sources": [{"name": "s", "model": "m", "temperature": -1.0}]}, r"sources\[0\]\.temperature"),
        ({"sample": {"temperature": float("nan")}}, "sample.temperature: must be a finite number"),
        ({"sample": {"batch_size": 0}}, "sample.batch_size"),
        ({"sft": {"gradient_accumulation_steps": 0}}, "sft.gradient_accumulation_steps"),
        ({"sft": {"num_train_epochs": "three"}}, "sft.num_train_epochs: expected float"),
        ({"dpo": {"max_length": 0.5}}, "dpo.max_length: expected int"),
        ({"dpo": {"lr_scheduler_type": "cosine_typo"}}, "dpo.lr_scheduler_type: cosine_typo is not a valid"),
        ({"sft": {"deepspeed": "no-such-zero3.json"}}, "sft.deepspeed: file not found"),
        ({"eval": {"benchmarks": ["gsm8k", "nosuch"]}}, "eval: unknown benchmark 'nosuch'"),
        ({"eval": {"suite": "nosuch"}}, "eval: unknown suite 'nosuch'"),
        ({"eval": {"benchmarks": ["gsm8k"], "max_new_tokens": -5}}, "eval.max_new_tokens"),
        ({"eval": {"benchmarks": ["gsm8k"], "batch_size": 0}}, "eval.batch_size"),
        ({"sample": {"dtype": "int8"}}, "sample.dtype: 'int8' not one of"),
        ({"sample": {"device": "banana"}}, "sample.device: 'banana'"),
        ({"score": {"device": "cuda:x"}}, "score.device"),
        ({"eval": {"benchmarks": ["gsm8k"], "backend": "sglang"}}, "eval.backend: 'sglang' not one of"),
        ({"sample": {"data_parallel_size": 0}}, "sample.data_parallel_size"),
        ({"eval": {"benchmarks": ["gsm8k"], "source_limit": 0}}, "eval.source_limit"),
        ({"sft": {"accelerate_config": "no-such.yaml"}}, "sft.accelerate_config: file not found"),
    ],
)
def test_bad_config_is_one_usage_error_line(tmp_path: Path, patch: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        parse_config({**minimal_fuse_config(tmp_path), **patch})
    assert "\n" not in str(info.value)


def test_unknown_target_transform_and_scorer(tmp_path: Path) -> None:
    raw = minimal_fuse_config(tmp_path)
    with pytest.raises(UsageError, match=r"prompts\[0\]\.target_transform: 'nope' unknown"):
        parse_config({**raw, "prompts": [{**raw["prompts"][0], "target_transform": "nope"}]})
    with pytest.raises(UsageError, match=r"prompts\[0\]\.scorer: 'nope' unknown"):
        parse_config({**raw, "prompts": [{**raw["prompts"][0], "scorer": "nope"}]})


def test_missing_prompt_file_and_instruction_without_reward_model(tmp_path: Path) -> None:
    raw = minimal_fuse_config(tmp_path)
    with pytest.raises(UsageError, match="file not found"):
        parse_config({**raw, "prompts": [{"path": "nope.jsonl", "domain": "math"}]})
    with pytest.raises(UsageError, match="reward_model"):
        parse_config({**raw, "prompts": [{**raw["prompts"][0], "domain": "instruction", "target_field": None}]})


def test_example_configs_load() -> None:
    tiny = load_config(REPO / "examples" / "fuse-tiny.yaml")
    assert tiny.resolve_path(tiny.prompts[0].path).is_file()
    with pytest.raises(UsageError, match="file not found"):  # its prompt sets are not bundled
        load_config(REPO / "examples" / "fusechat3-llama31-8b.yaml")
    big = load_config(REPO / "examples" / "fusechat3-llama31-8b.yaml", require_files=False)  # a dry run's load
    assert big.sample.backend == "vllm" and big.sft.accelerate_config == "examples/accelerate/zero3.yaml"
    small = load_config(REPO / "examples" / "fuse-small.yaml")
    assert [s.model for s in small.sources] == ["qwen2.5-coder-0.5b-instruct-gguf", "smollm2-135m-instruct"]
    assert all(small.resolve_path(p.path).is_file() for p in [*small.prompts, *small.validation])


def test_bundled_train_prompts_are_disjoint_from_gsm8k_test() -> None:
    data = REPO / "benchmarks" / "data"
    train = {json.loads(x)["question"] for x in (data / "fuse" / "gsm8k_train_200.jsonl").read_text().splitlines()}
    test = {json.loads(x)["question"] for x in (data / "gsm8k" / "test.jsonl").read_text().splitlines()}
    assert len(train) == 200 and not train & test


@pytest.mark.timeout(120)
def test_bundled_code_prompts_are_disjoint_from_mbpp_plus_and_solvable() -> None:
    from fusebench.scorers.base import ScoreInput, get_scorer
    from fusebench_train.prompts import load_prompts

    data = REPO / "benchmarks" / "data"
    plus = {json.loads(x)["task_id"] for x in (data / "mbpp_plus" / "MbppPlus-v0.1.0.jsonl").read_text().splitlines()}
    cfg = load_config(REPO / "examples" / "fuse-tiny.yaml")
    code = [p for p in load_prompts(cfg) if p.domain == "code"]
    assert code and all(f"Mbpp/{p.id}" not in plus for p in code)
    first = code[0]
    assert first.item["test_list"][0] in first.messages[-1]["content"]  # the template shows a test
    scorer = get_scorer(first.scorer or "")
    gold = f"```python\n{first.item['code']}\n```"
    assert scorer(ScoreInput(output=gold, target=None, item=first.item)).value == 1.0
    assert scorer(ScoreInput(output="```python\ndef f(): pass\n```", target=None, item=first.item)).value == 0.0


def test_prompts_where_every_response_fails_are_dropped_before_the_split() -> None:
    # 10 math prompts, only two with a correct response: both must be split (one SFT, one DPO), none wasted
    responses = [r(f"p{i}", "s", j, 0.0, False) for i in range(10) for j in range(2)]
    responses += [r("p3", "s", 2, 1.0, True), r("p7", "s", 2, 1.0, True)]
    result = build(responses, {"math": 0.5}, (0.01, 0.1), seed=0)
    assert sorted(result.side) == ["p3", "p7"] and sorted(result.side.values()) == ["dpo", "sft"]
    assert len(result.sft) == 1 and len(result.pairs) == 1
    assert build_stats(result, responses)["prompts_without_usable_response"] == 8
