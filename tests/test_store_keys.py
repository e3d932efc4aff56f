"""The results store and the cache keys."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fusebench.keys import SAMPLER_FIELD, generation_key
from fusebench.store import RunSettings, RunSummary, Store, store_url

BASE = dict(
    model_fingerprint={"model": "m", "weights": "abc", "chat_template": "t"},
    benchmark="gsm8k",
    benchmark_version=1,
    sample_id="3",
    sample_index=0,
    prompt=[{"role": "user", "content": "hi"}],
    gen_params={"max_new_tokens": 10, "temperature": 0.0, "seed": 0},
)


def test_key_ignores_dict_order_but_not_content() -> None:
    reordered = {**BASE, "gen_params": {"seed": 0, "temperature": 0.0, "max_new_tokens": 10}}
    assert generation_key(**BASE) == generation_key(**reordered)


def test_the_sampler_counts_only_for_sampled_params() -> None:
    with_sampler = {**BASE, "model_fingerprint": {**BASE["model_fingerprint"], SAMPLER_FIELD: "row-seeded-1"}}
    assert generation_key(**with_sampler) == generation_key(**BASE)  # greedy keys survive a sampler change
    sampled = {"gen_params": {**BASE["gen_params"], "temperature": 0.7}}
    newer = {"model_fingerprint": {**BASE["model_fingerprint"], SAMPLER_FIELD: "row-seeded-2"}}
    assert generation_key(**{**with_sampler, **sampled}) != generation_key(**{**BASE, **sampled})
    assert generation_key(**{**with_sampler, **sampled}) != generation_key(**{**with_sampler, **sampled, **newer})


@given(
    field=st.sampled_from(["model_fingerprint", "benchmark", "benchmark_version", "sample_id", "sample_index",
                           "prompt", "gen_params"]),
    salt=st.integers(min_value=1, max_value=10**6),
)  # fmt: skip
def test_changing_any_part_changes_the_key(field: str, salt: int) -> None:
    changed = dict(BASE)
    value = changed[field]
    if isinstance(value, dict):
        changed[field] = {**value, "x": salt}
    elif isinstance(value, list):
        changed[field] = [*value, {"role": "user", "content": str(salt)}]
    elif isinstance(value, int):
        changed[field] = value + salt
    else:
        changed[field] = f"{value}-{salt}"
    assert generation_key(**changed) != generation_key(**BASE)


def _run_row(run_id: str, config_hash: str) -> dict:
    return dict(
        id=run_id, config_hash=config_hash, model="m", model_fingerprint={}, backend="hf", suite="demo",
        benchmarks=["gsm8k"], environment={}, tags={},
    )  # fmt: skip


def test_unfinished_runs_are_resumable_and_finished_are_not(tmp_path: Path) -> None:
    store = Store(store_url(None, tmp_path))
    store.create_run(_run_row("r1", "h"), RunSettings())
    assert store.find_resumable_run("h") == "r1"
    store.finish_run("r1", "complete", RunSummary())
    assert store.find_resumable_run("h") is None
    assert store.get_run("r1")["status"] == "complete"


def test_generations_upsert_and_sqlite_uses_wal(tmp_path: Path) -> None:
    store = Store(store_url(None, tmp_path))
    row = dict(key="k1", benchmark="b", sample_id="1", sample_index=0, prompt=[], output="a",
               prompt_tokens=1, completion_tokens=2, finish_reason="stop", latency_s=0.1, meta={})  # fmt: skip
    store.put_generations([row])
    store.put_generations([{**row, "output": "b"}])
    got = store.get_generations(["k1", "missing"])
    assert list(got) == ["k1"] and got["k1"]["output"] == "b"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
