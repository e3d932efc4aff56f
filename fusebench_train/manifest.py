"""The work directory's manifest: per stage, the hash of its inputs and of the artifact it wrote.

A stage is skipped when the manifest says it finished with the same input hash and its artifact still
hashes the same; a stage that started but did not finish is marked "running" with its input hash, so a
rerun with the same inputs resumes its partial work and one with other inputs starts clean.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def _volatile(p: Path) -> bool:
    """Files that change without the content changing: HF datasets' state.json (a random fingerprint) and the
    cache-*.arrow files that map() calls (tokenisation, TRL's reference log-probs) add beside a saved dataset."""
    return p.name == "state.json" or (p.name.startswith("cache-") and p.suffix == ".arrow")


def path_hash(path: Path) -> str:
    """sha256 over a file, or over a folder's files (relative names and contents, sorted; volatile files skipped)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not _volatile(p))
    for f in files:
        digest.update(f"{f.relative_to(path) if f != path else f.name}\0".encode())
        with f.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


class Manifest:
    """manifest.json in the work directory, rewritten atomically on every change."""

    def __init__(self, work_dir: Path) -> None:
        self.path = work_dir / "manifest.json"
        self.data: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as out:
            json.dump(self.data, out, indent=2, sort_keys=True)
        os.replace(out.name, self.path)

    def entry(self, stage: str) -> dict[str, Any]:
        return self.data.get(stage, {})

    def is_done(self, stage: str, inputs: str, artifact: Path) -> bool:
        """Finished with these inputs, and the artifact on disk is the one recorded."""
        e = self.entry(stage)
        return (
            e.get("status") == "done"
            and e.get("inputs") == inputs
            and artifact.exists()
            and path_hash(artifact) == e.get("artifact")
        )

    def can_resume(self, stage: str, inputs: str) -> bool:
        """A previous attempt with the same inputs started and did not finish (killed, interrupted, or failed)."""
        e = self.entry(stage)
        return e.get("status") in {"running", "interrupted", "failed"} and e.get("inputs") == inputs

    def start(self, stage: str, inputs: str) -> None:
        self.data[stage] = {"status": "running", "inputs": inputs, "started": time.time()}
        self._save()

    def fail(self, stage: str, error: str, status: str = "failed") -> None:
        """The stage stopped on an error, or was `interrupted` (SIGINT/SIGTERM); its partial work stays resumable."""
        self.data[stage] = {**self.entry(stage), "status": status, "error": error, "failed": time.time()}
        self._save()

    def finish(self, stage: str, inputs: str, artifact: Path, info: dict[str, Any] | None = None) -> str:
        digest = path_hash(artifact)
        finished = time.time()
        started = self.entry(stage).get("started", finished)
        self.data[stage] = {
            "status": "done",
            "inputs": inputs,
            "artifact": digest,
            "started": started,
            "finished": finished,
            "wall_s": round(finished - started, 1),  # of the last attempt (a resumed stage: since it resumed)
            **({"info": info} if info else {}),
        }
        self._save()
        return digest

    def artifact_hash(self, stage: str) -> str | None:
        e = self.entry(stage)
        return e.get("artifact") if e.get("status") == "done" else None
