"""The fusion plugin's subcommands inside `fusebench`, and the stage manifest (fast: no model)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from fusebench import cli
from fusebench.exits import Interrupted
from fusebench_train import cli as train_cli
from fusebench_train.manifest import Manifest, path_hash
from tests.conftest import minimal_fuse_config

pytestmark = pytest.mark.usefixtures("train_plugin")  # as if the plugin's entry point were installed


def test_subcommands_are_registered() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["fuse", "build", "x.yaml", "--from", "score"])
    assert (args.stage, args.from_stage, args.func) == ("build", "score", train_cli.cmd_fuse)
    args = parser.parse_args(["fuse-and-eval", "x.yaml"])
    assert args.func is train_cli.cmd_fuse_and_eval


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("target: [unclosed", "not valid YAML"),
        ("target: smollm2-135m-instruct\n", "missing required key 'sources'"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_bad_config_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    assert cli.main(["fuse-and-eval", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_config_and_unknown_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["fuse", "sample", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read config" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["fuse", "train", "x.yaml"])
    assert info.value.code == 2


def test_manifest_skip_resume_and_artifact_change(tmp_path: Path) -> None:
    art = tmp_path / "art"
    art.mkdir()
    (art / "data-00000.arrow").write_bytes(b"rows")
    m = Manifest(tmp_path)
    m.start("score", "h1")
    assert m.can_resume("score", "h1") and not m.can_resume("score", "h2")
    assert not m.is_done("score", "h1", art)
    m.finish("score", "h1", art, {"n": 1})
    m = Manifest(tmp_path)  # reloaded from disk
    assert m.is_done("score", "h1", art) and not m.is_done("score", "h2", art)
    assert json.loads((tmp_path / "manifest.json").read_text())["score"]["info"] == {"n": 1}
    (art / "state.json").write_text('{"_fingerprint": "random"}')  # volatile: ignored
    (art / "cache-abc.arrow").write_bytes(b"ref logps")
    assert m.is_done("score", "h1", art)
    (art / "data-00000.arrow").write_bytes(b"other rows")
    assert not m.is_done("score", "h1", art)


def test_path_hash_depends_on_names_and_contents(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "x").write_text("1")
    assert path_hash(a) == path_hash(b)
    (b / "x").rename(b / "y")
    assert path_hash(a) != path_hash(b)


def _pipeline_failing_with(tmp_path: Path, exc: BaseException) -> object:
    from fusebench_train.config import parse_config
    from fusebench_train.pipeline import Pipeline

    raw = minimal_fuse_config(tmp_path)

    def no_backend(source: object) -> object:  # the stage stops before any model runs
        raise exc

    return Pipeline(parse_config(raw), make_source_backend=no_backend, log=lambda msg: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signalled_stage_is_marked_interrupted_not_failed_and_stays_resumable(tmp_path: Path, signum: int) -> None:
    # seen on the GPU machine: `timeout -s INT` stopped the eval stage and the manifest said "failed"
    pipeline = _pipeline_failing_with(tmp_path, Interrupted(signum))
    with pytest.raises(Interrupted):
        pipeline.run(until="sample")  # type: ignore[attr-defined]
    entry = json.loads((tmp_path / "w" / "manifest.json").read_text())["sample"]
    assert entry["status"] == "interrupted" and entry["error"] == f"Interrupted: {signal.Signals(signum).name}"
    assert Manifest(tmp_path / "w").can_resume("sample", entry["inputs"])


def test_a_failing_stage_is_marked_failed_and_stays_resumable(tmp_path: Path) -> None:
    pipeline = _pipeline_failing_with(tmp_path, RuntimeError("backend exploded\nsecond line"))
    with pytest.raises(RuntimeError):
        pipeline.run(until="sample")  # type: ignore[attr-defined]
    entry = json.loads((tmp_path / "w" / "manifest.json").read_text())["sample"]
    assert (entry["status"], entry["error"]) == ("failed", "RuntimeError: backend exploded")
    assert Manifest(tmp_path / "w").can_resume("sample", entry["inputs"])


def test_manifest_records_wall_time_and_the_cli_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    art = tmp_path / "a"
    art.write_text("x")
    clock = iter([1000.0, 1090.0, 2000.0, 2600.0])
    monkeypatch.setattr("fusebench_train.manifest.time.time", lambda: next(clock))
    m = Manifest(tmp_path)
    for stage in ("sample", "sft"):
        m.start(stage, "h")
        m.finish(stage, "h", art)
    assert (m.entry("sample")["wall_s"], m.entry("sft")["wall_s"]) == (90.0, 600.0)
    assert train_cli.stage_times(m.data) == "wall time per stage: sample 1.5 min, sft 10.0 min; total 11.5 min"
