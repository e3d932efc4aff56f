"""Reading commands start fast: they import no model stack (torch, transformers) nor the heavy scoring and data
libraries, and a fully cached eval computes the model fingerprint from files without loading the model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_compare_support import add_run, binary

from fusebench.backends.hf_identity import known_template_hash, remember_template_hash, torch_is_cpu_only
from fusebench.store import Store
from tests.conftest import REPO, cli_env

pytest_plugins = ["test_compare_support"]

HEAVY = ("torch", "transformers", "datasets", "math_verify", "sympy", "sklearn", "alpaca_eval", "pandas")

# Runs `fusebench ARGS` in this process, then prints its exit code and the HEAVY modules it imported.
PROBE = """
import contextlib, io, json, sys
from fusebench.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[2:])
heavy = [m for m in json.loads(sys.argv[1]) if m in sys.modules]
print(json.dumps({"code": code, "out": out.getvalue(), "heavy": heavy}))
"""


def probe(*args: str, heavy: tuple[str, ...] = HEAVY, env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(heavy), *args],
        capture_output=True, text=True, env=env or cli_env(), cwd=REPO, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture
def family(store: Store) -> Path:
    """Two stored runs of one family (steps 100 and 200), as `fusebench eval --tag` would store them."""
    add_run(store, "base-1", "org/base", {"gsm8k": binary(20, range(10)), "humaneval": binary(4, {0})},
            tags={"family": "f", "step": "100"})  # fmt: skip
    add_run(store, "new-1", "org/new", {"gsm8k": binary(20, range(13)), "humaneval": binary(4, {0, 1})},
            tags={"family": "f", "step": "200"})  # fmt: skip
    return Path(store.url.removeprefix("sqlite:///"))


@pytest.mark.parametrize(
    "command",
    [
        ["runs"],
        ["show", "new-1"],
        ["compare", "base-1", "new-1"],
        ["diff", "base-1", "new-1", "--benchmark", "gsm8k"],
        ["history", "f"],
        ["gate", "new-1", "--baseline", "base-1"],
        ["report", "base-1", "new-1", "-o", "{tmp}/report.html"],
    ],
)
def test_reading_commands_import_no_model_stack(family: Path, tmp_path: Path, command: list[str]) -> None:
    result = probe(*[c.replace("{tmp}", str(tmp_path)) for c in command], "--store", str(family))
    assert result["code"] in (0, 1), result  # gate may find a regression (1); nothing else may fail
    assert result["heavy"] == []
    assert "new-1" in result["out"] or command[0] == "report"


def test_list_imports_no_scorer_and_help_still_shows_every_command() -> None:
    result = probe("list", heavy=(*HEAVY, "scipy", "sqlalchemy", "fusebench_train", "fusebench.scorers.code"))
    assert result["code"] == 0 and result["heavy"] == []
    assert "gsm8k" in result["out"]
    full = subprocess.run([sys.executable, "-m", "fusebench.cli", "--help"], capture_output=True, text=True,
                          env=cli_env(), cwd=REPO)  # fmt: skip
    for command in ("eval", "runs", "compare", "import", "export", "fuse"):  # built-in, interop, plugin
        assert command in full.stdout


def test_scorers_load_by_name_only() -> None:
    """The lazy registry's table matches what the scorer modules register; asking for one imports only its module."""
    from fusebench import scorers

    # in a fresh process: this one's registry may hold what other tests registered
    every = (
        "import importlib; from fusebench import scorers; from fusebench.scorers import base; "
        "[importlib.import_module(m) for m in sorted(set(scorers.BUILTIN.values()))]; print(sorted(base._REGISTRY))"
    )
    registered = subprocess.run([sys.executable, "-c", every], capture_output=True, text=True, check=True).stdout
    assert registered.strip() == str(sorted(scorers.BUILTIN))
    code = "import sys; from fusebench.scorers.base import get_scorer; get_scorer('choice'); print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert (
        "'fusebench.scorers.choice'" in loaded
        and "math_verify" not in loaded
        and "fusebench.scorers.code" not in loaded
    )


def test_torch_build_is_read_without_importing_torch() -> None:
    code = (
        "import sys; from fusebench.backends.hf_identity import torch_is_cpu_only as f; v = f(); "
        "t = 'torch' in sys.modules; import torch; "
        "print(v, t, torch.version.cuda is None and torch.version.hip is None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False" and out[0] == out[2]
    assert torch_is_cpu_only() == (out[2] == "True")


def test_remembered_template_hash_follows_the_template_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSEBENCH_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    assert known_template_hash(str(model), None) is None
    remember_template_hash(str(model), None, "h1")
    assert known_template_hash(str(model), None) == "h1"
    (model / "chat_template.jinja").write_text("{{ other }}")  # a template file appears: transformers may read it
    assert known_template_hash(str(model), None) is None
    remember_template_hash(str(model), None, "h2")
    (model / "chat_template.jinja").write_text("{{ other, longer }}")
    assert known_template_hash(str(model), None) is None
    assert known_template_hash("org/name", "main") is None  # a hub branch can move: never remembered
    remember_template_hash("org/name", "a" * 40, "h3")
    assert known_template_hash("org/name", "a" * 40) == "h3"


@pytest.mark.slow
def test_cached_eval_loads_no_model_and_keeps_its_keys(tmp_path: Path) -> None:
    """The bundled model on 6 GSM8K items at batch 3: the first eval generates; a rerun finds every answer in the
    store without importing torch or transformers (same fingerprint, same keys, same scores); a rerun with more
    items builds the model then (the deferred backend checks that its fingerprint matches the loaded one)."""
    out = str(tmp_path / "out")
    flags = ["eval", "--benchmarks", "gsm8k", "--max-new-tokens", "24", "--batch-size", "3", "--output-dir", out]
    first = probe(*flags, "--limit", "6", heavy=("torch",))
    assert first["code"] == 0 and "6 generated, 0 from cache" in first["out"]
    cached = probe(*flags, "--limit", "6", heavy=("torch", "transformers", "datasets", "sklearn", "pandas"))
    assert cached["code"] == 0 and "0 generated, 6 from cache" in cached["out"]
    assert cached["heavy"] == []  # (math-verify and sympy it needs: GSM8K answers are scored again)
    more = probe(*flags, "--limit", "8", heavy=("torch",))
    assert more["code"] == 0 and "2 generated, 6 from cache" in more["out"] and more["heavy"] == ["torch"]

    store = Store(f"sqlite:///{tmp_path / 'out' / 'fusebench.db'}")
    runs = sorted(store.list_runs(), key=lambda r: r["started_at"])
    fingerprints = [store.get_run(r["id"])["model_fingerprint"] for r in runs]
    assert len(runs) == 3 and fingerprints[0] == fingerprints[1] == fingerprints[2]
    scores = [[(r["benchmark"], r["score"]) for r in store.get_benchmark_results(run["id"])] for run in runs[:2]]
    assert scores[0] == scores[1]


def test_wilson_interval_is_scipys_to_the_bit() -> None:
    """mean_ci's 0/1 interval, computed without importing scipy.stats, equals scipy's binomtest Wilson interval."""
    from scipy.stats import binomtest

    from fusebench.stats import mean_ci, wilson_interval

    for n in (1, 2, 3, 7, 20, 30, 199, 1319):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            for confidence in (0.8, 0.9, 0.95, 0.99):
                ci = binomtest(k, n).proportion_ci(confidence, method="wilson")
                assert wilson_interval(k, n, confidence) == (float(ci.low), float(ci.high)), (k, n, confidence)
    interval = mean_ci([1.0] * 4 + [0.0] * 16)
    assert (interval.low, interval.high) == wilson_interval(4, 20)


def test_scoring_a_math_benchmark_imports_no_scipy_stats() -> None:
    code = (
        "import sys; from fusebench.scoring import score_benchmark; from fusebench.data import load_items; "
        "from fusebench.spec import get_benchmark; spec = get_benchmark('gsm8k'); items = load_items(spec, 3).items; "
        "r = score_benchmark(spec, items, ['\\\\boxed{18}', 'no', '\\\\boxed{3}']); "
        "print(round(r.interval.estimate, 2), 'scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    score, imported = out.split()
    assert float(score) > 0 and imported == "False", out  # the first answer is right (18)
