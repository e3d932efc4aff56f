"""The OpenAI-compatible backend: request shape, retries and backoff, Retry-After, key hygiene, real server runs.

Fault tests go through tests/fault_proxy.py. Those that never need an answer (every attempt is an injected
failure) run without a model; the slow ones forward to a real `transformers serve` of the bundled SmolLM2 model.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fusebench.backends.base import Backend, Completion, GenParams, sample_seed
from fusebench.backends.openai import MAX_RETRY_AFTER_S, OpenAIBackend, _parse, _retry_after
from fusebench.errors import UsageError
from tests.fault_proxy import Fault, FaultProxy, scripted
from tests.local_server import serve_bundled_model

DEAD_UPSTREAM = "http://127.0.0.1:9/v1"  # for plans that never forward
GREEDY = GenParams(max_new_tokens=16, temperature=0.0)
SHORT = GenParams(max_new_tokens=8, temperature=0.0)


def _backend(url: str, **kw: object) -> OpenAIBackend:
    opts: dict[str, object] = {"timeout_s": 5.0, "max_retries": 3, "backoff_base_s": 0.05, "backoff_max_s": 1.0}
    opts.update(kw)
    return OpenAIBackend("smollm2", url, **opts)  # type: ignore[arg-type]


def _ask(*prompts: str) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": p}] for p in prompts]


def _gaps(proxy: FaultProxy, key: str) -> list[float]:
    times = [a.at for a in proxy.attempts[key]]
    return [b - a for a, b in itertools.pairwise(times)]


def test_request_body_carries_every_param() -> None:
    backend = _backend("http://127.0.0.1:1/v1/")
    params = GenParams(max_new_tokens=7, temperature=0.5, top_p=0.9, n=3, stop=("\n\n", "END"), seed=11)
    body = backend.request_body(_ask("hi")[0], params, sample=2)
    assert body == {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": sample_seed(11, json.dumps(_ask("hi")[0], sort_keys=True), 2, bits=31),
        "n": 1,
        "stop": ["\n\n", "END"],
    }
    assert "stop" not in backend.request_body(_ask("hi")[0], GREEDY, sample=0)
    seeds = {backend.request_body(c, params, sample=j)["seed"] for c in (_ask("hi")[0], _ask("ho")[0]) for j in (0, 1)}
    assert len(seeds) == 4  # per conversation and sample: prompts do not share a random stream


def test_logprobs_are_requested_and_parsed() -> None:
    body = _backend("http://127.0.0.1:1/v1/").request_body(_ask("hi")[0], GenParams(logprobs=2), sample=0)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    answer = {
        "choices": [
            {
                "message": {"content": "m"},
                "finish_reason": "stop",
                "logprobs": {
                    "content": [
                        {
                            "token": "m",
                            "logprob": -0.1,
                            "top_logprobs": [{"token": "m", "logprob": -0.1}, {"token": "M", "logprob": -2.4}],
                        }
                    ]
                },
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }
    completion = _parse(answer, index=0, sample=0, attempts=1, latency_s=0.1)
    assert completion.meta["logprobs"] == [{"token": "m", "logprob": -0.1, "top": {"m": -0.1, "M": -2.4}}]


def test_fingerprint_and_describe_name_the_host_only() -> None:
    backend: Backend = _backend("https://api.example.com:8443/v1")  # mypy checks the protocol here
    fingerprint = {"model": "smollm2", "backend": "openai", "endpoint": "api.example.com:8443"}
    assert backend.fingerprint() == {**fingerprint, "sampler": "prompt-seeded-1"}
    assert backend.describe()["served_revision"] == "unknown"
    with pytest.raises(UsageError) as err:
        _backend("https://user:s3cret-pw@api.example.com/v1")
    assert "s3cret-pw" not in str(err.value)
    with pytest.raises(UsageError, match="base_url"):
        _backend("api.example.com/v1")


def test_missing_key_env_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUSEBENCH_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(UsageError, match="FUSEBENCH_TEST_NO_SUCH_KEY"):
        _backend(DEAD_UPSTREAM, api_key_env="FUSEBENCH_TEST_NO_SUCH_KEY")


@given(retry=st.integers(0, 30), base=st.floats(0.01, 5), cap=st.floats(0.1, 100))
def test_backoff_grows_exponentially_with_jitter_under_the_cap(retry: int, base: float, cap: float) -> None:
    backend = _backend(DEAD_UPSTREAM, backoff_base_s=base, backoff_max_s=cap)
    full = min(cap, base * 2**retry)
    assert 0.5 * full <= backend.backoff_s(retry) <= full


@given(st.floats(0, 1e6, allow_nan=False))
def test_retry_after_seconds_are_clamped(seconds: float) -> None:
    assert _retry_after(repr(seconds)) == min(seconds, MAX_RETRY_AFTER_S)


def test_retry_after_http_date_and_garbage() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (_retry_after(when) or 0) <= 30
    assert _retry_after("soon") is None
    assert _retry_after("nan") is None
    assert _retry_after("inf") == MAX_RETRY_AFTER_S
    assert _retry_after(None) is None
    assert _retry_after("-5") == 0.0


@pytest.mark.timeout(30)
def test_api_key_never_leaks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = "sk-canary-7f3a91d2e4"
    monkeypatch.setenv("FUSEBENCH_TEST_KEY", canary)
    caplog.set_level(logging.DEBUG)
    echo = Fault("500", body=f"invalid key {canary}")  # a hostile server echoing the key back
    with FaultProxy(DEAD_UPSTREAM, plan=lambda key, attempt: echo) as proxy:
        backend = _backend(proxy.base_url, api_key_env="FUSEBENCH_TEST_KEY", max_retries=1)
        (done,) = list(backend.generate(_ask("hello"), GREEDY))
    assert proxy.auth_seen == {f"Bearer {canary}"}  # the key was sent...
    assert done.finish_reason == "error" and "invalid key ***" in done.meta["error"]
    captured = capsys.readouterr()
    seen = [repr(backend), str(vars(backend)), str(backend.describe()), str(backend.fingerprint()), repr(done)]
    seen += [caplog.text, captured.out, captured.err]
    assert not [s for s in seen if canary in s]  # ...and appears nowhere else


@pytest.mark.timeout(30)
def test_retry_budget_ends_in_an_error_completion_with_backoff() -> None:
    with FaultProxy(DEAD_UPSTREAM, plan=lambda key, attempt: Fault("503")) as proxy:
        backend = _backend(proxy.base_url, max_retries=3, backoff_base_s=0.1)
        (done,) = list(backend.generate(_ask("q"), GREEDY))
    assert done.index == 0 and done.finish_reason == "error" and done.text == ""
    assert done.meta["error"].startswith("gave up after 4 attempts: HTTP 503")
    assert done.meta["attempts"] == 4 and len(proxy.attempts["q"]) == 4
    gaps = _gaps(proxy, "q")
    for retry, gap in enumerate(gaps):  # backoff k is in [0.5, 1] * 0.1 * 2**k
        assert 0.05 * 2**retry - 0.01 <= gap <= 0.1 * 2**retry + 0.3, gaps


@pytest.mark.timeout(30)
def test_retry_after_is_honoured() -> None:
    plan = scripted({"q": [Fault("429", retry_after="1"), Fault("401", body="stop here")]})
    with FaultProxy(DEAD_UPSTREAM, plan=plan) as proxy:
        (done,) = list(_backend(proxy.base_url, backoff_base_s=0.01).generate(_ask("q"), GREEDY))
    (gap,) = _gaps(proxy, "q")
    assert 0.98 <= gap < 1.5  # the backoff alone would have waited <= 0.01 s
    assert done.meta["error"] == "HTTP 401: stop here"  # not retryable: no "gave up after"


@pytest.mark.timeout(30)
def test_non_retryable_status_is_not_retried() -> None:
    with FaultProxy(DEAD_UPSTREAM, plan=lambda key, attempt: Fault("400", body="bad request")) as proxy:
        done = list(_backend(proxy.base_url).generate(_ask("a", "b"), GREEDY))
    assert sorted(c.index for c in done) == [0, 1]
    assert all(c.finish_reason == "error" and c.meta["attempts"] == 1 for c in done)
    assert {k: len(v) for k, v in proxy.attempts.items()} == {"a": 1, "b": 1}


@pytest.mark.timeout(30)
def test_closing_the_generator_early_cancels_pending_requests() -> None:
    def plan(key: str, attempt: int) -> Fault:
        return Fault("400") if key == "fast" else Fault("slow", delay_s=20)

    with FaultProxy(DEAD_UPSTREAM, plan=plan) as proxy:
        gen = _backend(proxy.base_url, timeout_s=30).generate(_ask("slow1", "fast", "slow2"), GREEDY)
        start = time.monotonic()
        first = next(gen)
        gen.close()
        assert first.index == 1 and time.monotonic() - start < 5


# ---- against a real server -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`transformers serve` of the bundled model on 127.0.0.1, model loaded: (base_url, model name)."""
    with serve_bundled_model(tmp_path_factory.mktemp("serve")) as (base_url, model_dir):
        list(OpenAIBackend(model_dir, base_url).generate(_ask("Hi"), SHORT))  # loads the model
        yield base_url, model_dir


def _by_index(done: list[Completion]) -> dict[int, str]:
    assert len({c.index for c in done}) == len(done)
    return {c.index: c.text for c in done}


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_real_server_generates_and_reports_usage(real_server: tuple[str, str]) -> None:
    url, model = real_server
    backend = OpenAIBackend(model, url, concurrency=4, timeout_s=120)
    done = list(backend.generate(_ask("What is 2+2?", "Name a colour."), GREEDY))
    assert sorted(c.index for c in done) == [0, 1]
    for c in done:
        assert c.text.strip() and c.finish_reason in {"stop", "length"}, c
        assert c.prompt_tokens > 0 and 0 < c.completion_tokens <= 16
        assert c.meta["usage"]["completion_tokens"] == c.completion_tokens and c.meta["attempts"] == 1
    sampled = list(backend.generate(_ask("Say hi."), GenParams(max_new_tokens=8, temperature=0.8, n=2, seed=3)))
    assert sorted((c.index, c.meta["sample"]) for c in sampled) == [(0, 0), (0, 1)]
    assert all(c.finish_reason != "error" for c in sampled)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_request_survives_injected_faults(real_server: tuple[str, str]) -> None:
    url, model = real_server
    faults = {
        "Count to three.": [Fault("429", retry_after="0.3"), Fault("429", retry_after="0.3")],
        "What is the capital of France?": [Fault("500")],
        "Name a fruit.": [Fault("503"), Fault("500"), Fault("503")],
        "What is 3*3?": [Fault("slow", delay_s=12)],
        "Say hello.": [Fault("drop"), Fault("drop")],
        "Name an animal.": [Fault("truncate")],
    }
    prompts = list(faults)
    direct = _by_index(list(OpenAIBackend(model, url).generate(_ask(*prompts), SHORT)))
    with FaultProxy(url, plan=scripted(faults)) as proxy:
        # the model server answers one request at a time in ~1 s here; 10 s covers the queue, not the slow fault
        backend = OpenAIBackend(model, proxy.base_url, concurrency=2, timeout_s=10, max_retries=4, backoff_base_s=0.1)
        done = list(backend.generate(_ask(*prompts), SHORT))
    assert all(c.finish_reason != "error" for c in done), [c.meta for c in done]
    assert _by_index(done) == direct  # greedy answers unchanged by the faults: no sample lost or mixed up
    for i, prompt in enumerate(prompts):
        kinds = [a.fault for a in proxy.attempts[prompt]]
        assert kinds == [f.kind for f in faults[prompt]] + ["ok"], (prompt, kinds)
        assert next(c for c in done if c.index == i).meta["attempts"] == len(kinds)
    assert dict(proxy.delivered) == dict.fromkeys(prompts, 1)  # each answer reached the client exactly once
