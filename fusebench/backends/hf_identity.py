"""The HF backend's identity without torch: a fully cached eval computes the model fingerprint from files on disk
(the weights hash, and the chat-template hash remembered from the run that first loaded the tokenizer) and builds the
engine (torch, transformers, tokenizer, weights) only when something has to be generated.

Cache keys are unchanged: the fingerprint is HFBackend's, and building the engine checks that it is."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusebench.backends.base import Completion, Conversation, EngineStats, GenParams, TokenCallback
from fusebench.keys import SAMPLER_FIELD, stable_hash
from fusebench.models import ResolvedModel, cache_root, converted_dir, write_json_cache

if TYPE_CHECKING:
    from fusebench.backends.hf import HFBackend

SAMPLER_VERSION = "row-seeded-1"  # in the HF fingerprint: a new sampling rule must not reuse old samples
DEFAULT_BATCH_CPU = 64  # 100 GSM8K items x 256 tokens, fp32, 1 thread: 196.9 s at batch 32, 161.8 at 64, 153.4 at 100
DEFAULT_BATCH_GPU = 64
_DTYPES = ("float32", "bfloat16", "float16")
# where transformers reads a chat template from (a folder's tokenizer_config.json holds it in older layouts)
_TEMPLATE_FILES = ("tokenizer_config.json", "chat_template.jinja", "chat_template.json")
_TEMPLATE_DIR = "additional_chat_templates"
_SHA = re.compile(r"[0-9a-f]{40}")


def torch_is_cpu_only() -> bool:
    """Whether the installed torch was built without CUDA and ROCm (so `--device auto` means the CPU), read from
    torch/version.py without importing torch. False when it cannot tell."""
    if "torch" in sys.modules:
        version = sys.modules["torch"].version
        return version.cuda is None and version.hip is None
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    try:
        tree = ast.parse((Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text())
    except (OSError, SyntaxError, ValueError):
        return False
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
                found[target.id] = value.value
    return "cuda" in found and "hip" in found and found["cuda"] is None and found["hip"] is None


def _templates_path() -> Path:
    return cache_root() / "chat_templates.json"


def template_stamp(source: str, revision: str | None) -> str | None:
    """What the chat template that transformers reads from `source` depends on: the template files of a local folder
    (name, size, mtime), or a hub repo's pinned commit; and the transformers version. None when it cannot tell."""
    try:
        reader = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        return None
    folder = Path(source)
    if folder.is_dir():
        extra = folder / _TEMPLATE_DIR
        files = [folder / name for name in _TEMPLATE_FILES] + (sorted(extra.iterdir()) if extra.is_dir() else [])
        stamps = [[str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.is_file()]
        return stable_hash({"folder": str(folder.resolve()), "files": stamps, "transformers": reader})
    if revision and _SHA.fullmatch(revision):
        return stable_hash({"hub": source, "revision": revision, "transformers": reader})
    return None


def _load_templates() -> dict[str, str]:
    try:
        data = json.loads(_templates_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def known_template_hash(source: str, revision: str | None) -> str | None:
    """The chat-template hash remembered for `source` as it is now, or None."""
    stamp = template_stamp(source, revision)
    return _load_templates().get(stamp) if stamp else None


def remember_template_hash(source: str, revision: str | None, template_hash: str) -> None:
    """Remember a chat-template hash read through transformers, for runs that need no tokenizer."""
    stamp = template_stamp(source, revision)
    if stamp is None:
        return
    # a read-only cache only costs loading the tokenizer next time
    write_json_cache(_templates_path(), {**_load_templates(), stamp: template_hash})


def hf_fingerprint(model: ResolvedModel, template_hash: str, dtype: str) -> dict[str, str]:
    """HFBackend.fingerprint(), from its parts."""
    return {
        "model": model.name,
        "weights": model.fingerprint,
        "chat_template": template_hash,
        "dtype": dtype,
        SAMPLER_FIELD: SAMPLER_VERSION,
    }


class DeferredHFBackend:
    """The HF backend, built on first generate: until then its fingerprint and description come from files."""

    name = "hf"

    def __init__(self, fingerprint: dict[str, str], described: dict[str, Any], build: Callable[[], HFBackend]) -> None:
        self._fingerprint = fingerprint
        self._described = described
        self._build = build
        self.stats = EngineStats()  # handed to the engine when it is built (the speed record reads it meanwhile)

    @cached_property
    def engine(self) -> HFBackend:
        engine = self._build()
        if engine.fingerprint() != self._fingerprint:  # keys were looked up with it: never store under another
            raise RuntimeError(f"model fingerprint changed on loading: {engine.fingerprint()} != {self._fingerprint}")
        engine.stats = self.stats
        return engine

    @property
    def built(self) -> bool:
        return "engine" in self.__dict__

    def fingerprint(self) -> dict[str, str]:
        return dict(self._fingerprint)

    def describe(self) -> dict[str, Any]:
        return self.engine.describe() if self.built else dict(self._described)

    def generate(
        self, convs: Sequence[Conversation], params: GenParams, on_tokens: TokenCallback | None = None
    ) -> Iterator[Completion]:
        return self.engine.generate(convs, params, on_tokens)


def deferred_hf(
    model: ResolvedModel, batch_size: int | None, dtype: str, device: str, build: Callable[[], HFBackend]
) -> DeferredHFBackend | None:
    """The HF backend, deferred, when its fingerprint is known without torch: the device is the CPU (asked for, or
    `auto` with a CPU-only torch), the weights are on disk (a GGUF model already converted) and the chat-template
    hash is remembered for its files as they are. None otherwise: build the backend now."""
    if not (device == "cpu" or (device == "auto" and torch_is_cpu_only())):
        return None
    resolved_dtype = "float32" if dtype == "auto" else dtype
    if resolved_dtype not in _DTYPES:
        return None
    if model.gguf_file is not None:
        if not (converted_dir(model) / "config.json").is_file():
            return None
        source, revision = str(converted_dir(model)), None
    else:
        source, revision = model.path_or_id, model.revision
    template_hash = known_template_hash(source, revision)
    if template_hash is None:
        return None
    described = {
        "engine": "transformers",
        "transformers": metadata.version("transformers"),
        "torch": metadata.version("torch"),
        "dtype": resolved_dtype,
        "device": "cpu",
        "batch_size": batch_size or DEFAULT_BATCH_CPU,
    }
    return DeferredHFBackend(hf_fingerprint(model, template_hash, resolved_dtype), described, build)
