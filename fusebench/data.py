"""Dataset sources: bundled JSONL/Parquet files (checksummed) or hub datasets pinned to a revision."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusebench.errors import UsageError
from fusebench.preparer_registry import get_preparer
from fusebench.spec import BenchmarkSpec, DataSpec, benchmarks_dir
from fusebench.targets import TRANSFORMS


@dataclass(frozen=True)
class Item:
    """One benchmark item: a stable id, the prompt input, the gold target, and the raw row."""

    id: str
    input: str
    target: Any
    row: dict[str, Any]


@dataclass(frozen=True)
class LoadedData:
    items: list[Item]
    source: str  # a path or folder, or hf://id@revision (several joined by " + ")
    checksum: str  # sha256 of the file(s), or the hub revision(s), comma-separated


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_rows(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a JSONL (optionally .gz), JSON (a list of records) or Parquet file (read with pyarrow: plain Python
    values, lists as lists); with `limit`, only the first rows that a JSONL or Parquet file holds. A damaged file is
    a one-line UsageError."""
    if path.suffix == ".json":
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsageError(f"corrupt data file {path}: {exc}".splitlines()[0]) from exc
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise UsageError(f"corrupt data file {path}: expected a JSON list of records")
        return records[:limit]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
            if limit is None:
                return parquet.read().to_pylist()  # type: ignore[no-any-return]
            rows: list[dict[str, Any]] = []
            for batch in parquet.iter_batches(batch_size=limit):  # the first row group(s) only
                rows.extend(batch.to_pylist()[: limit - len(rows)])
                if len(rows) >= limit:
                    break
            return rows
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise UsageError(f"corrupt data file {path}: {exc}".splitlines()[0]) from exc
    rows = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UsageError(f"corrupt data file {path}: line {lineno}, column {exc.colno}: {exc.msg}") from exc
    return rows


def resolve_data_path(spec_path: str, folder: Path | None = None) -> Path:
    """A spec's data path: relative to the spec's `folder` (None: benchmarks_dir()), absolute, or
    `pkg:PACKAGE/FILE` inside an installed package."""
    if spec_path.startswith("pkg:"):
        package, _, inner = spec_path.removeprefix("pkg:").partition("/")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise UsageError(f"data file {spec_path} needs the package {package!r}: pip install it")
        return Path(next(iter(found.submodule_search_locations))) / inner
    path = Path(spec_path)
    return path if path.is_absolute() else (folder or benchmarks_dir()) / path


def _load_local(data: DataSpec, bench_id: str, limit: int | None) -> tuple[list[dict[str, Any]], str, str]:
    """A bundled file's rows; with a limit, only the first ones when the file is the pinned one (its sha256 matches
    the spec's, so its other rows were checked when it was pinned) and no preparer needs them all."""
    assert data.path is not None
    path = resolve_data_path(data.path, data.folder)
    if not path.is_file():
        raise UsageError(f"data file for {bench_id} not found: {path}")
    checksum = sha256_file(path)
    if data.sha256 and checksum != data.sha256:
        raise UsageError(
            f"corrupt data file {path}: sha256 {checksum[:12]}… does not match the spec's {data.sha256[:12]}…"
        )
    partial = limit if data.sha256 and not data.prepare else None
    return read_rows(path, partial), str(path), checksum


def _load_local_dir(data: DataSpec, bench_id: str) -> tuple[list[dict[str, Any]], str, str] | None:
    """Rows from a user's local copy of a hub dataset, when the env var named by option `local_dir_env` is set:
    every file under that folder matching option `local_glob` (default `**/*.jsonl`), in path order. The checksum
    covers each file's relative path and sha256. None when the spec has no such option or the variable is unset."""
    env = data.options.get("local_dir_env")
    value = os.environ.get(env) if env else None
    if not value:
        return None
    root = Path(value)
    pattern = str(data.options.get("local_glob", "**/*.jsonl"))
    files = sorted(p for p in root.glob(pattern) if p.is_file()) if root.is_dir() else []
    if not files:
        raise UsageError(f"{env}={value}: no files matching {pattern} for {bench_id}")
    digest = hashlib.sha256()
    rows = []
    for path in files:
        digest.update(f"{path.relative_to(root)}\0{sha256_file(path)}\n".encode())
        rows.extend(read_rows(path))
    return rows, str(root), digest.hexdigest()


def _hub_datasets(data: DataSpec) -> list[tuple[str, str]]:
    """(id, revision) of the spec's hub dataset, then of option `extra_hub_datasets` (`id@revision` each)."""
    hub = data.hub
    assert hub is not None
    found = [(hub.id, hub.revision)]
    for ref in data.options.get("extra_hub_datasets") or []:
        repo_id, _, revision = str(ref).partition("@")
        if not repo_id or not revision:
            raise UsageError(f"data.options.extra_hub_datasets: {ref!r} is not id@revision")
        found.append((repo_id, revision))
    return found


def _hub_rows(data: DataSpec) -> list[dict[str, Any]]:
    """Rows of the spec's hub datasets at their pinned revisions, concatenated; with `extra_hub_datasets`, each row
    is tagged with its dataset id as `hub_dataset`."""
    refs = _hub_datasets(data)
    if len(refs) == 1:
        return _hub_dataset_rows(data, *refs[0])
    return [{**row, "hub_dataset": repo_id} for repo_id, rev in refs for row in _hub_dataset_rows(data, repo_id, rev)]


def _hub_dataset_rows(data: DataSpec, repo_id: str, revision: str) -> list[dict[str, Any]]:
    """Rows of one hub dataset at `revision`. Options: `hub_files` (files of the repo read directly, for repos that
    `datasets` cannot load, e.g. script-based ones) or `hub_configs` (several configs concatenated, each row tagged
    with its config as `hub_config`); else the spec's one config and split."""
    hub = data.hub
    assert hub is not None
    if data.options.get("hub_files"):
        from huggingface_hub import hf_hub_download

        rows = []
        for name in data.options["hub_files"]:
            path = hf_hub_download(repo_id, name, repo_type="dataset", revision=revision)
            rows.extend(read_rows(Path(path)))
        return rows
    import datasets

    configs = data.options.get("hub_configs")
    if not configs:
        ds = datasets.load_dataset(repo_id, hub.config, split=hub.split, revision=revision)
        return [dict(r) for r in ds]
    rows = []
    for config in configs:
        ds = datasets.load_dataset(repo_id, config, split=hub.split, revision=revision)
        rows.extend({**dict(r), "hub_config": config} for r in ds)
    return rows


def _load_hub(data: DataSpec, bench_id: str) -> tuple[list[dict[str, Any]], str, str]:
    hub = data.hub
    assert hub is not None
    try:
        rows = _hub_rows(data)
    except UsageError:
        raise
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE")
        local = data.options.get("local_dir_env")
        where = f"set {local} to a folder of local copies" if local else "point the spec's data.path at a local file"
        hint = f" (offline: download it once with network access, or {where})"
        raise UsageError(
            f"cannot load {bench_id} from the hub {hub.id}@{hub.revision}: {type(exc).__name__}"
            + (hint if offline else "")
        ) from exc
    refs = _hub_datasets(data)
    source = " + ".join(f"hf://{repo_id}@{rev}" for repo_id, rev in refs)
    return rows, source, ",".join(rev for _, rev in refs)


def _prepare(name: str, rows: list[dict[str, Any]], spec: BenchmarkSpec) -> list[dict[str, Any]]:
    try:
        preparer = get_preparer(name)
    except KeyError:
        raise UsageError(f"benchmark {spec.id}: unknown data.prepare {name!r}") from None
    return preparer(rows, spec)


def load_items(spec: BenchmarkSpec, limit: int | None = None) -> LoadedData:
    """Load a benchmark's items: the bundled file when there is one, else a local copy named by the spec's
    `local_dir_env` variable when that is set, else the pinned hub dataset(s)."""
    data = spec.data
    if data.path:
        rows, source, checksum = _load_local(data, spec.id, limit)
    elif (local_dir := _load_local_dir(data, spec.id)) is not None:
        rows, source, checksum = local_dir
    elif data.hub:
        rows, source, checksum = _load_hub(data, spec.id)
    else:
        raise UsageError(f"benchmark {spec.id} has no data source")
    if data.prepare:
        rows = _prepare(data.prepare, rows, spec)
    transform = TRANSFORMS.get(data.target_transform)
    if transform is None:
        raise UsageError(f"benchmark {spec.id}: unknown target_transform {data.target_transform!r}")
    items = []
    for index, row in enumerate(rows):
        try:
            item_id = str(row[data.id_field]) if data.id_field else str(index)
            items.append(Item(item_id, str(row[data.input_field]), transform(row[data.target_field]), row))
        except KeyError as exc:
            raise UsageError(f"corrupt data file {source}: row {index} has no field {exc}") from exc
    if len({item.id for item in items}) != len(items):
        raise UsageError(f"corrupt data file {source}: duplicate item ids")
    if limit is not None:
        items = items[:limit]
    return LoadedData(items, source, checksum)
