"""A benchmark from outside fusebench runs like a built-in (issue 13's "Done means").

tests/thirdparty/ is a separate package, fusebench-acme, as a team would keep its private benchmarks: installed (here
with `pip install --target` into a temporary folder put on PYTHONPATH: a real install, offline, no network), it adds
the benchmark `acme_sums` (spec, checksummed data, suite) through the `fusebench.benchmarks` entry point, its scorer
(a plain function) through `fusebench.scorers` and its row preparer through `fusebench.preparers`, and
`acme_sums_distance`, a second scoring of the same answers by a Scorer object with its own scale (0-10, lower is
better); fusebench is not edited. The real bundled model answers them, then `rescore`, `compare`, `gate` and `report`
read the stored runs. A plain folder of YAML joins the catalog with `--include-path` (or $FUSEBENCH_INCLUDE_PATH).

The questions are test_gate_real's one-step sums, which the default model answers right about 10 times in 24 in one
sentence (stopped at the newline); a candidate with 2 new tokens cannot reach any number, so the gate sees a drop.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_env, run_cli

PACKAGE = REPO / "tests" / "thirdparty"
N = 24  # acme_sums' items


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fusebench-acme installed into a fresh folder (built from a copy, so the source tree gets no build files)."""
    root = tmp_path_factory.mktemp("thirdparty")
    shutil.copytree(PACKAGE, root / "src")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    done = subprocess.run([*command, "--target", str(root / "site"), str(root / "src")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "site"


def _env(site: Path, **extra: str) -> dict[str, str]:
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    return cli_env(PYTHONPATH=os.pathsep.join(paths), **extra)


def _runs(out: Path) -> set[str]:
    return {p.name for p in (out / "runs").iterdir()} if (out / "runs").is_dir() else set()


def _eval(env: dict[str, str], out: Path, *args: str) -> str:
    """`fusebench eval ARGS` (exit 0); the new run's id."""
    before = _runs(out)
    done = run_cli("eval", *args, "--batch-size", "8", "--no-progress", "--output-dir", str(out), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    (new,) = _runs(out) - before
    return new


def _results(out: Path, run: str) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["benchmark"]: r for r in json.loads((out / "runs" / run / "results.json").read_text())["results"]}


def _scores(out: Path, run: str, benchmark: str) -> dict[str, float]:
    lines = (out / "runs" / run / "samples" / f"{benchmark}.jsonl").read_text().splitlines()
    return {row["sample_id"]: row["score"] for row in map(json.loads, lines)}


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


def test_listed_from_its_package(site: Path) -> None:
    listing = run_cli("list", env=_env(site))
    assert listing.returncode == 0, listing.stderr
    (row,) = [line.split() for line in listing.stdout.splitlines() if line.startswith("acme_sums ")]
    assert row == ["acme_sums", "math", str(N), "accuracy", "acme_last_number"]
    (row,) = [line.split() for line in listing.stdout.splitlines() if line.startswith("acme_sums_distance ")]
    assert row == ["acme_sums_distance", "math", str(N), "distance", "acme_distance"]
    assert any(line.split()[:2] == ["acme", "2"] for line in listing.stdout.splitlines())  # its suite
    assert "gsm8k" in listing.stdout and "BROKEN" not in listing.stdout
    without = run_cli("list")  # not installed: not there
    assert without.returncode == 0 and "acme_sums" not in without.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_eval_rescore_compare_gate_report_like_a_builtin(site: Path, tmp_path: Path) -> None:
    env, out = _env(site), tmp_path / "out"
    base = _eval(env, out, "--suite", "acme")  # the package's suite: all 24 items
    cand = _eval(env, out, "--benchmarks", "acme_sums,acme_sums_distance", "--max-new-tokens", "2")

    result = _results(out, base)["acme_sums"]
    installed = site / "fusebench_acme" / "specs" / "data" / "acme_sums.jsonl"
    assert result["data_source"] == str(installed)  # the spec's data path resolves in the spec's own folder
    assert result["data_checksum"] == "8e18ab4efc37711158de6da1b76a8977a12d5c4acd5ab8000c319542ae2ab6ff"
    right = _scores(out, base, "acme_sums")
    assert len(right) == N and set(right.values()) <= {0.0, 1.0}
    base_right = sum(right.values())
    # McNemar needs 6 right->wrong flips (and no other change) for p < 0.05
    assert base_right >= 6, f"the base model answered only {base_right}/{N} right: the premise of this test broke"
    assert result["score"] == pytest.approx(100 * base_right / N)
    assert sum(_scores(out, cand, "acme_sums").values()) == 0  # 2 tokens cannot hold an answer
    samples = (out / "runs" / base / "samples" / "acme_sums.jsonl").read_text().splitlines()
    first = json.loads(samples[0])  # the package's preparer built the question, its scorer extracted the number
    assert first["prompt"][-1]["content"] == "Tom has 2 apples and buys 3 more. How many apples does he have now?"
    assert first["target"] == "5" and (first["score"] == 1.0) == (first["extracted"] == "5")
    # the second scoring of the same answers (cache_as), by the package's Scorer object: its own scale, stored
    distance = _results(out, base)["acme_sums_distance"]
    assert distance["scale"] == {"points_per_unit": 1.0, "full": 10.0, "higher_is_better": False}
    far = _scores(out, base, "acme_sums_distance")
    assert set(far) == set(right) and all(far[i] == 0.0 for i in right if right[i] == 1.0)
    assert distance["score"] == pytest.approx(sum(far.values()) / N)  # mean distance, shown as is (0-10)
    far_cand = _scores(out, cand, "acme_sums_distance")

    store = ("--output-dir", str(out))
    rescored = run_cli("rescore", base, *store, env=env)
    assert rescored.returncode == 0, rescored.stderr
    assert _scores(out, base, "acme_sums") == right and _results(out, base)["acme_sums"]["score"] == result["score"]

    compared = run_cli("compare", base, cand, "--format", "json", *store, env=env)
    assert compared.returncode == 0, compared.stderr
    (row,) = [r for r in json.loads(compared.stdout)["rows"] if r["benchmark"] == "acme_sums"]
    assert row["scores"] == pytest.approx([100 * base_right / N, 0.0])
    assert row["deltas"][0]["n_shared"] == N and row["deltas"][0]["test"] == "mcnemar"
    (row,) = [r for r in json.loads(compared.stdout)["rows"] if r["benchmark"] == "acme_sums_distance"]
    assert row["scores"] == pytest.approx([sum(far.values()) / N, sum(far_cand.values()) / N])

    failed = run_cli("gate", cand, "--baseline", base, "--max-drop", "1.0", "--format", "json", *store, env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    reasons = {f["benchmark"]: f["reason"] for f in json.loads(failed.stdout)["failures"]}
    assert reasons["acme_sums"].startswith(f"dropped {100 * base_right / N:.2f} points")
    # farther from the sums is a drop on a lower-is-better scale, counted x10 (0-10 per item, as percent)
    rise = sum(far_cand.values()) / N - sum(far.values()) / N
    assert rise > 0 and reasons["acme_sums_distance"].startswith(f"dropped {10 * rise:.2f} points")
    terminal = run_cli("gate", cand, "--baseline", base, "--max-drop", "1.0", *store, env=env)
    assert terminal.returncode == 1 and "acme_sums_distance" in terminal.stdout
    again = _eval(env, out, "--suite", "acme")  # the base's settings: every answer from the cache
    assert _scores(out, again, "acme_sums") == right
    passed = run_cli("gate", again, "--baseline", base, "--max-drop", "1.0", *store, env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    report = tmp_path / "report.html"
    made = run_cli("report", base, cand, "-o", str(report), *store, env=env)
    assert made.returncode == 0, made.stderr
    assert "acme_sums" in report.read_text(encoding="utf-8")


LOCAL_SPEC = """\
id: local_sums
version: 1
category: math
description: A spec in a plain folder, added with --include-path.
data:
  path: data/sums.jsonl
  input_field: q
  target_field: a
prompt:
  user: "{input} Answer with the number only."
generation: {max_new_tokens: 8, temperature: 0.0, stop: ["\\n"]}
scorer: math
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A plain folder of YAML (not a package): one spec with its data beside it, and a suite."""
    root = tmp_path / "mine"
    (root / "data").mkdir(parents=True)
    (root / "suites").mkdir()
    (root / "local_sums.yaml").write_text(LOCAL_SPEC)
    rows = [{"q": f"What is {a} + {b}?", "a": str(a + b)} for a, b in [(1, 2), (3, 4), (5, 1), (2, 2), (6, 3)]]
    (root / "data" / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "suites" / "mine.yaml").write_text("id: mine\nbenchmarks: [{benchmark: local_sums, limit: 4}]\n")
    return root


@pytest.mark.slow
def test_include_path_adds_a_plain_folder(site: Path, folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = _runs(out)
    args = ("--include-path", str(folder), "eval", "--suite", "mine", "--batch-size", "2", "--no-progress")
    done = run_cli(*args, "--output-dir", str(out), env=_env(site))
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = _runs(out) - before
    result = _results(out, run)["local_sums"]
    assert result["n"] == 4 and result["data_source"] == str(folder / "data" / "sums.jsonl")

    by_env = run_cli("list", env=_env(site, FUSEBENCH_INCLUDE_PATH=str(folder)))
    assert by_env.returncode == 0, by_env.stderr
    listed = {line.split()[0] for line in by_env.stdout.splitlines() if line.strip()}
    assert {"local_sums", "mine", "acme_sums", "acme", "gsm8k", "demo"} <= listed  # added to the others


def test_an_id_defined_in_two_folders_fails_only_its_users(site: Path, folder: Path, tmp_path: Path) -> None:
    spec = site / "fusebench_acme" / "specs" / "acme_sums.yaml"
    shutil.copy(spec, folder / "acme_copy.yaml")  # keeps `id: acme_sums`
    env = _env(site)
    line = _one_error_line(
        run_cli(
            "--include-path", str(folder), "eval", "--benchmarks", "acme_sums", "--output-dir", str(tmp_path), env=env
        )
    )
    assert line == f"fusebench: error: benchmark 'acme_sums' is defined twice: {spec}, {folder / 'acme_copy.yaml'}"
    listing = run_cli("--include-path", str(folder), "list", env=env)
    assert listing.returncode == 0, listing.stderr
    assert any(
        line.startswith("BROKEN acme_sums: benchmark 'acme_sums' is defined twice")
        for line in listing.stdout.splitlines()
    )
    assert "local_sums" in listing.stdout and "gsm8k" in listing.stdout


def test_an_include_path_that_is_not_a_folder_is_bad_input(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    line = _one_error_line(run_cli("--include-path", str(missing), "list"))
    assert line == f"fusebench: error: spec folder {missing} (from --include-path) is not a folder"
    line = _one_error_line(run_cli("list", env=cli_env(FUSEBENCH_INCLUDE_PATH=str(missing))))
    assert line == f"fusebench: error: spec folder {missing} (from $FUSEBENCH_INCLUDE_PATH) is not a folder"
