"""Fusion run configuration: dataclasses with the FuseChat-3.0 defaults, loaded from YAML and validated.

Every problem in a config file becomes one `UsageError` line naming the offending key.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fusebench.errors import UsageError
from fusebench.scorers.base import scorer_names
from fusebench.spec import benchmarks_dir, get_benchmark, get_suite
from fusebench.targets import TRANSFORMS
from fusebench_train.trl_config import TrainStage
from fusebench_train.trl_config import check as check_stage

DOMAINS = ("instruction", "math", "code")
VERIFIABLE = frozenset({"math", "code"})
DEFAULT_SCORERS = {"math": "math", "code": "mbpp"}
DTYPES = ("auto", "float32", "bfloat16", "float16")
BACKENDS = ("auto", "hf", "vllm")
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps|xpu(:\d+)?")
MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True)
class SourceModel:
    """One source model that responses are sampled from."""

    name: str
    model: str  # fusebench model spec: alias, local dir, .gguf file or hub id[@revision]
    temperature: float | None = None  # overrides sample.temperature for this source


@dataclass(frozen=True)
class PromptSet:
    """A JSONL file of training prompts of one domain."""

    path: str  # relative to the config file's folder, or to the current directory
    domain: str
    prompt_field: str = "question"
    prompt_template: str | None = None  # str.format over the row, e.g. "{text}\n{test_list[0]}"; else prompt_field
    target_field: str | None = "answer"  # gold answer (math) or tests row (code); None for instruction
    target_transform: str = "identity"  # a fusebench.targets transform, e.g. gsm8k_final
    id_field: str | None = None  # None: "<file stem>-<row index>"
    scorer: str | None = None  # fusebench scorer for verifiable domains (default: math -> math, code -> mbpp)
    system: str | None = None  # system prompt (default for math: the \\boxed{} instruction of the eval specs)
    prefill: str = ""  # the assistant turn starts with this (EvalPlus); the answer is prefill + completion
    limit: int | None = None  # first N rows
    expected_rows: int | None = None  # rows of a file not here yet: the plan's sizes (the file's own count wins)

    def hashed(self) -> dict[str, Any]:
        """The set as the sample and score stages' cache keys see it: the keys of earlier releases (a prefill only
        when set, so finished stages stay valid); `expected_rows` is a hint for the plan, never a key."""
        data = dataclasses.asdict(self)
        del data["expected_rows"]
        if not self.prefill:
            del data["prefill"]
        return data


@dataclass(frozen=True)
class SampleConfig:
    """Stage 1: several responses per prompt from each source (FuseChat-3.0: 5 general, 8 code)."""

    samples_per_prompt: dict[str, int] = field(default_factory=lambda: {"instruction": 5, "math": 5, "code": 8})
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 2048
    batch_size: int | None = None
    dtype: str = "auto"
    device: str = "auto"
    backend: str = "auto"  # auto: vLLM if importable here or a .venv-vllm exists, else HF (venv.choose_backend)
    data_parallel_size: int = 1  # vLLM: one engine per group of tensor_parallel_size GPUs, over shards of the prompts
    tensor_parallel_size: int = 1  # vLLM: each layer split across this many GPUs


@dataclass(frozen=True)
class ScoreConfig:
    """Stage 2: reward model for open-ended prompts; math and code are checked against gold answers / tests."""

    reward_model: str | None = None  # any AutoModelForSequenceClassification (paper: ArmoRM-Llama3-8B-v0.1)
    batch_size: int = 4
    max_length: int = 4096
    trust_remote_code: bool = False
    device: str = "auto"


@dataclass(frozen=True)
class BuildConfig:
    """Stage 3: the SFT set and the same-source DPO pairs."""

    sft_fraction: dict[str, float] = field(default_factory=lambda: {"instruction": 0.4, "math": 0.4, "code": 0.4})
    reward_gap: tuple[float, float] = (0.01, 0.1)  # kept band of chosen-rejected RM score gaps
    pairs_per_prompt: int = 1  # same-source pairs kept per prompt (the sources with the best chosen first)
    seed: int = 0


@dataclass(frozen=True)
class EvalStageConfig:
    """Stage 6: base, SFT and fused model on one suite, stored as tagged runs, then the gains table."""

    suite: str | None = None  # a fusebench suite id, or:
    benchmarks: list[str] | None = None  # benchmark ids
    limit: int | None = None
    source_limit: int | None = None  # sources on the first N items only (paired with the others on those items)
    max_new_tokens: int | None = None
    batch_size: int | None = None
    backend: str = "hf"  # "vllm" (in this interpreter: GPU recipes), or "auto" as sample.backend
    dtype: str = "auto"
    data_parallel_size: int = 1  # vLLM: engines over shards of the items
    tensor_parallel_size: int = 1
    evaluate_sources: bool = False
    family: str = "fuse"
    store: str | None = None  # database URL or SQLite file (default: WORK_DIR/fusebench.db)
    seed: int = 0


@dataclass(frozen=True)
class FuseConfig:
    """A whole fusion run."""

    target: str
    sources: list[SourceModel]
    prompts: list[PromptSet]
    work_dir: str
    seed: int = 0
    validation: list[PromptSet] = field(default_factory=list)  # tuning prompts, carved from the training sources
    sample: SampleConfig = field(default_factory=SampleConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    sft: TrainStage = field(default_factory=lambda: TrainStage("sft"))  # TRL's SFTConfig (fusebench_train.trl_config)
    dpo: TrainStage = field(default_factory=lambda: TrainStage("dpo"))  # TRL's DPOConfig
    eval: EvalStageConfig = field(default_factory=EvalStageConfig)
    base_dir: str = "."  # folder of the config file; relative paths resolve against it first

    def resolve_path(self, path: str) -> Path:
        """An input file named in the config: absolute, else the first that exists of: beside the config file,
        under the current directory, under fusebench's benchmarks folder (bundled data: "data/fuse/...")."""
        p = Path(path).expanduser()
        if p.is_absolute():
            return p
        for candidate in (Path(self.base_dir) / p, p, benchmarks_dir() / p):
            if candidate.exists():
                return candidate
        return p

    @property
    def work_path(self) -> Path:
        """The work directory (relative paths: from the current directory)."""
        return Path(self.work_dir).expanduser()

    def section(self, name: str) -> dict[str, Any]:
        """A config section as plain data (for input hashes)."""
        value = getattr(self, name)
        return value.hashed() if isinstance(value, TrainStage) else dataclasses.asdict(value)

    def trl_kwargs(self, stage: str) -> dict[str, Any]:
        """TRL's config arguments of a training stage: checkpoints under the work dir, the run's seed, a
        relative DeepSpeed file resolved as every input file of the config."""
        kwargs = getattr(self, stage).trl_kwargs(self.work_path / stage / "checkpoints", self.seed)
        if isinstance(kwargs.get("deepspeed"), str):
            kwargs["deepspeed"] = str(self.resolve_path(kwargs["deepspeed"]))
        return kwargs


def _check_type(value: Any, hint: Any, where: str) -> Any:
    """Validate (and lightly coerce: int -> float, list -> tuple) a YAML value against a type hint."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except UsageError:
                continue
        raise UsageError(f"{where}: expected {hint}, got {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise UsageError(f"{where}: expected a list, got {value!r}")
        return [_check_type(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise UsageError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_check_type(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise UsageError(f"{where}: expected a mapping, got {value!r}")
        return {_check_type(k, args[0], where): _check_type(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if hint is TrainStage:
        return TrainStage.parse(where, value)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)  # type: ignore[arg-type]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Any or (isinstance(hint, type) and isinstance(value, hint) and not (hint is int and value is True)):
        if hint is int and isinstance(value, bool):
            raise UsageError(f"{where}: expected int, got {value!r}")
        return value
    raise UsageError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _build(cls: type, raw: Any, where: str) -> Any:
    at = f"{where}: " if where else ""
    if not isinstance(raw, dict):
        raise UsageError(f"{at}expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise UsageError(f"{at}unknown key {unknown[0]!r} (known: {', '.join(sorted(names))})")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise UsageError(f"{at}missing required key {missing[0]!r}")
    kwargs = {k: _check_type(v, hints[k], f"{where}.{k}" if where else k) for k, v in raw.items()}
    return cls(**kwargs)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


def validate(cfg: FuseConfig, require_files: bool = True, check_trl: bool = True) -> None:
    """Cross-field checks that types alone cannot express. `require_files=False` (a dry run) lets prompt files be
    absent: the plan reports them instead. `check_trl=False` skips TRL's checks of sft/dpo (a process without TRL
    that re-reads a checked config)."""
    _require(bool(cfg.sources), "sources: at least one source model is needed")
    names = [s.name for s in cfg.sources]
    _require(len(set(names)) == len(names), f"sources: duplicate name in {names}")
    _require(bool(cfg.prompts), "prompts: at least one prompt set is needed")
    for key, sets in (("prompts", cfg.prompts), ("validation", cfg.validation)):
        for i, p in enumerate(sets):
            _require(p.domain in DOMAINS, f"{key}[{i}].domain: {p.domain!r} not in {DOMAINS}")
            _require(p.limit is None or p.limit >= 1, f"{key}[{i}].limit: must be >= 1")
            if p.domain in VERIFIABLE:
                _require(p.target_field is not None, f"{key}[{i}].target_field: needed for domain {p.domain}")
            found = not require_files or cfg.resolve_path(p.path).is_file()
            _require(found, f"{key}[{i}].path: file not found: {p.path}")
            _require(p.target_transform in TRANSFORMS, f"{key}[{i}].target_transform: {p.target_transform!r} unknown")
            _require(p.scorer is None or p.scorer in scorer_names(), f"{key}[{i}].scorer: {p.scorer!r} unknown")
    domains = {p.domain for p in cfg.prompts}
    if "instruction" in domains:
        _require(cfg.score.reward_model is not None, "score.reward_model: needed for instruction prompts")
    s = cfg.sample
    for d in domains:
        _require(s.samples_per_prompt.get(d, 0) >= 2, f"sample.samples_per_prompt.{d}: need >= 2 to form pairs")
    _require(0 < s.temperature < math.inf, "sample.temperature: must be a finite number > 0 (sampling, not greedy)")
    for i, src in enumerate(cfg.sources):
        t = src.temperature
        _require(t is None or 0 < t < math.inf, f"sources[{i}].temperature: must be a finite number > 0")
    _require(0 < s.top_p <= 1, "sample.top_p: must be in (0, 1]")
    _require(s.max_new_tokens >= 1, "sample.max_new_tokens: must be >= 1")
    _require(s.batch_size is None or s.batch_size >= 1, "sample.batch_size: must be >= 1")
    _require(s.dtype in DTYPES, f"sample.dtype: {s.dtype!r} not one of {', '.join(DTYPES)}")
    _require(s.backend in BACKENDS, f"sample.backend: {s.backend!r} not one of {', '.join(BACKENDS)}")
    _require(s.data_parallel_size >= 1, "sample.data_parallel_size: must be >= 1")
    _require(s.tensor_parallel_size >= 1, "sample.tensor_parallel_size: must be >= 1")
    for section in ("sample", "score"):
        device = getattr(cfg, section).device
        _require(bool(DEVICE.fullmatch(device)), f"{section}.device: {device!r} is not auto, cpu, cuda or cuda:N")
    lo, hi = cfg.build.reward_gap
    _require(0 <= lo <= hi, f"build.reward_gap: need 0 <= low <= high, got {[lo, hi]}")
    for d, frac in cfg.build.sft_fraction.items():
        _require(d in DOMAINS and 0 <= frac <= 1, f"build.sft_fraction.{d}: need a domain and 0 <= value <= 1")
    _require(cfg.build.pairs_per_prompt >= 1, "build.pairs_per_prompt: must be >= 1")
    for stage in (cfg.sft, cfg.dpo):  # TRL validates the rest (check_trl): files and resuming are fusebench's
        ds, acc = stage.options.get("deepspeed"), stage.accelerate_config
        _require(not isinstance(ds, str) or cfg.resolve_path(ds).is_file(), f"{stage.name}.deepspeed: file not found")
        _require(acc is None or cfg.resolve_path(acc).is_file(), f"{stage.name}.accelerate_config: file not found")
        if check_trl:
            check_stage(stage, cfg.trl_kwargs(stage.name))
            for key in ("per_device_train_batch_size", "gradient_accumulation_steps"):  # the plan divides by them
                _require(stage.get(key) >= 1, f"{stage.name}.{key}: must be >= 1")
            keep = stage.get("save_total_limit")
            _require(keep is None or keep >= 1, f"{stage.name}.save_total_limit: must be >= 1 (reruns resume)")
    e = cfg.eval
    _require(bool(e.suite) != bool(e.benchmarks), "eval: give exactly one of suite and benchmarks (the eval suite)")
    _require(e.limit is None or e.limit >= 1, "eval.limit: must be >= 1")
    _require(e.source_limit is None or e.source_limit >= 1, "eval.source_limit: must be >= 1")
    _require(e.max_new_tokens is None or e.max_new_tokens >= 1, "eval.max_new_tokens: must be >= 1")
    _require(e.batch_size is None or e.batch_size >= 1, "eval.batch_size: must be >= 1")
    _require(e.backend in BACKENDS, f"eval.backend: {e.backend!r} not one of {', '.join(BACKENDS)}")
    _require(e.dtype in DTYPES, f"eval.dtype: {e.dtype!r} not one of {', '.join(DTYPES)}")
    _require(e.data_parallel_size >= 1 and e.tensor_parallel_size >= 1, "eval: parallel sizes must be >= 1")
    try:  # names checked now, not after hours of sampling and training
        get_suite(e.suite) if e.suite else [get_benchmark(b) for b in e.benchmarks or []]
    except UsageError as exc:
        raise UsageError(f"eval: {exc}") from exc


def parse_config(
    raw: Any, base_dir: Path | str = ".", require_files: bool = True, check_trl: bool = True
) -> FuseConfig:
    """Build and validate a FuseConfig from a mapping (as read from YAML)."""
    if not isinstance(raw, dict):
        raise UsageError("config: expected a mapping at the top level")
    cfg: FuseConfig = _build(FuseConfig, {**raw, "base_dir": str(base_dir)}, "")
    validate(cfg, require_files, check_trl)
    return cfg


def load_config(path: Path | str, work_dir: str | None = None, require_files: bool = True) -> FuseConfig:
    """Read a fusion config YAML file; `work_dir` overrides the file's work_dir; `require_files=False` for a
    dry run (prompt files may be absent)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"config {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if isinstance(raw, dict) and work_dir is not None:
        raw = {**raw, "work_dir": work_dir}
    try:
        return parse_config(raw, path.resolve().parent, require_files)
    except UsageError as exc:
        raise UsageError(f"config {path}: {exc}") from exc
