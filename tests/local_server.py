"""A real OpenAI-compatible server for tests: `transformers serve` of the bundled model on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cli_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_bundled_model(log_dir: Path) -> Iterator[tuple[str, str]]:
    """(base_url, model name) of a running `transformers serve`; skips the test where its extras are missing."""
    from transformers.utils.import_utils import is_serve_available

    from fusebench.models import load_source, resolve_model

    if not is_serve_available():
        pytest.skip("transformers serve needs: pip install fastapi uvicorn openai")
    model_dir, _ = load_source(resolve_model(None))
    port = free_port()
    log = log_dir / "serve.log"
    cmd = [sys.executable, "-c", "from transformers.cli.transformers import main; main()", "serve", model_dir]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    with log.open("w") as out:
        # one torch thread: on a small shared CPU box, oversubscribed threads make generation ~10x slower
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=cli_env(OMP_NUM_THREADS="1"))
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", model_dir
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
