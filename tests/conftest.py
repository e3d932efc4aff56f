"""Shared test helpers: run the real CLI in a subprocess, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def cli_env(**extra: str) -> dict[str, str]:
    # One BLAS thread: a model in a subprocess must not collapse when other work shares the 2 cores.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`fusebench ARGS` in a fresh process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "fusebench.cli", *args],
        capture_output=True,
        text=True,
        env=env or cli_env(),
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture(autouse=True, scope="session")
def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


# Real benchmark data beside the repository (../shared/data), which CI lays there too; a fresh clone has none, and the
# product never reads it. FUSEBENCH_TEST_SHARED names another folder (one that does not exist acts as a fresh clone).
SHARED = Path(os.environ.get("FUSEBENCH_TEST_SHARED") or REPO.parent / "shared")
SHARED_DATA = SHARED / "data"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "shared_data(*parts): reads SHARED_DATA/<parts> (benchmark data fusebench does not ship); skipped when absent",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked shared_data skips, naming the missing path, before any of its fixtures is set up."""
    for item in items:
        for mark in item.iter_markers("shared_data"):
            path = SHARED_DATA.joinpath(*mark.args)
            if not path.exists():
                reason = f"needs {path}: benchmark data fusebench does not ship (absent on a fresh clone)"
                item.add_marker(pytest.mark.skip(reason=reason))
                break


class _TrainEntryPoint:
    name = "fuse"

    def load(self):  # type: ignore[no-untyped-def]
        from fusebench_train import cli as train_cli

        return train_cli.register


@pytest.fixture
def train_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the `fusebench.plugins` entry point of the training plugin were installed."""
    from fusebench import plugins

    monkeypatch.setattr(plugins, "entry_points", lambda group: [_TrainEntryPoint()] if group == plugins.GROUP else [])


def minimal_fuse_config(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """The smallest valid fusion config (as read from YAML): one source, one math prompt, GSM8K held out; `sections`
    add or replace top-level sections."""
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n")
    return {
        "work_dir": str(tmp_path / "w"),
        "target": "smollm2-135m-instruct",
        "sources": [{"name": "s", "model": "smollm2-135m-instruct"}],
        "prompts": [{"path": str(prompts), "domain": "math", "target_transform": "gsm8k_final"}],
        "eval": {"benchmarks": ["gsm8k"]},
        **sections,
    }
