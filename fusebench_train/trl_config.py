"""The `sft:` and `dpo:` sections of a fusion config: TRL's own `SFTConfig` and `DPOConfig`.

A section's keys are TRL's option names and reach TRL unchanged, so every option and loss of the installed TRL is
available; TRL validates them (its dataclass fields and `__post_init__`) when the config is loaded, and a mistake
is one line naming the key. fusebench adds only:

- `accelerate_config`, its own key: the `accelerate launch --config_file` of the plan's multi-GPU command;
- OVERLAY: its defaults where they differ from TRL's (FuseChat-3.0's recipe; fp32 and no gradient checkpointing,
  so a CPU run works; GPU recipes set bf16 and gradient_checkpointing);
- per run: output_dir `WORK/<stage>/checkpoints` (where a rerun resumes; not settable), seed and data_seed from the
  config's seed, report_to none, tqdm bars off when TQDM_DISABLE=1 (a section may set these four).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusebench.errors import UsageError

_COMMON = {
    "warmup_steps": 0.1,  # a float < 1 is a fraction of the optimizer steps
    "lr_scheduler_type": "cosine",
    "max_length": 2048,
    "save_steps": 200,
    "save_total_limit": 1,  # checkpoints kept while training (each = weights + optimizer state)
    "bf16": False,  # TRL: True unless fp16
    "gradient_checkpointing": False,  # TRL: True
}
OVERLAY: dict[str, dict[str, Any]] = {
    "sft": {**_COMMON, "learning_rate": 5e-6, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 32},
    "dpo": {
        **_COMMON,
        "learning_rate": 8e-7,
        "num_train_epochs": 1.0,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 64,
        # length-normalised DPO (log-ratios over response length), FuseChat-3.0 with beta 10; TRL's default
        # "sigmoid" is standard DPO (then beta is about 0.01-0.1)
        "loss_type": "sigmoid_norm",
        "beta": 10.0,
        "precompute_ref_log_probs": True,  # reference log-probs computed once, reused every epoch
    },
}
RENAMED = {"warmup_ratio": "warmup_steps (a float < 1 is a fraction of the optimizer steps)"}

# Stage input hashes keep the shape they had when these sections were fusebench dataclasses, so finished stages
# stay valid: those keys always (defaults as then), warmup_steps under its old name, floats where those were floats.
_HASH_DEFAULTS = {"num_train_epochs": 3.0, "max_steps": -1, "logging_steps": 10, "deepspeed": None}
_HASH_FLOATS = ("learning_rate", "num_train_epochs", "warmup_ratio", "beta")


@dataclass(frozen=True)
class TrainStage:
    """One training section: TRL options as written (over OVERLAY) and fusebench's own `accelerate_config`."""

    name: str  # "sft" | "dpo"
    options: dict[str, Any] = field(default_factory=dict)
    accelerate_config: str | None = None

    @classmethod
    def parse(cls, name: str, raw: Any) -> TrainStage:
        if not isinstance(raw, dict):
            raise UsageError(f"{name}: expected a mapping of TRL {trl_class_name(name)} options, got {raw!r}")
        options = dict(raw)
        acc = options.pop("accelerate_config", None)
        if acc is not None and not isinstance(acc, str):
            raise UsageError(f"{name}.accelerate_config: expected a file path, got {acc!r}")
        return cls(name, options, acc)

    @property
    def settings(self) -> dict[str, Any]:
        """The TRL options fusebench passes: its overlay, then the section's keys."""
        return {**OVERLAY[self.name], **self.options}

    def get(self, key: str) -> Any:
        """A TRL option's value: set here, or TRL's default."""
        if key in self.settings:
            return self.settings[key]
        f = {f.name: f for f in dataclasses.fields(trl_class(self.name))}[key]
        return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc,operator]

    def trl_kwargs(self, output_dir: Path, seed: int) -> dict[str, Any]:
        """Keyword arguments of TRL's config class for this stage."""
        run = {"seed": seed, "data_seed": seed, "report_to": "none"}
        run["disable_tqdm"] = os.environ.get("TQDM_DISABLE") == "1"
        return {**run, **self.settings, "output_dir": str(output_dir)}

    def hashed(self) -> dict[str, Any]:
        """The section as a stage's input hash sees it."""
        out = {**_HASH_DEFAULTS, **self.settings, "accelerate_config": self.accelerate_config}
        out["warmup_ratio"] = out.pop("warmup_steps")
        for k in _HASH_FLOATS:
            if type(out.get(k)) is int:
                out[k] = float(out[k])
        return out


def trl_class_name(name: str) -> str:
    return {"sft": "SFTConfig", "dpo": "DPOConfig"}[name]


def trl_class(name: str) -> type:
    """TRL's config class of a stage."""
    try:
        import trl
    except ImportError as exc:
        raise UsageError(f"{name}: the training stages need TRL: pip install -e '.[train]'") from exc
    return typing.cast(type, getattr(trl, trl_class_name(name)))


def trl_args(name: str, kwargs: dict[str, Any]) -> Any:
    """TRL's config for a stage (the trainer's `args`)."""
    return trl_class(name)(**kwargs)


def check(stage: TrainStage, kwargs: dict[str, Any]) -> None:
    """TRL's own validation of a section's keys and values (`kwargs`: its trl_kwargs), as one UsageError line."""
    cls = trl_class(stage.name)
    import trl

    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key, value in stage.options.items():
        where = f"{stage.name}.{key}"
        if key == "output_dir":
            raise UsageError(f"{where}: set by fusebench (WORK_DIR/{stage.name}/checkpoints, where a rerun resumes)")
        if key in RENAMED:
            raise UsageError(f"{where}: renamed to {RENAMED[key]}")
        if key not in fields:
            near = difflib.get_close_matches(key, fields, n=1)
            hint = f"; did you mean {near[0]}?" if near else ""
            raise UsageError(f"{where}: unknown key, not an option of TRL {trl.__version__}'s {cls.__name__}{hint}")
        _check_scalar(value, fields[key].type, where)
    try:
        built = _probe(cls, kwargs)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{_culprit(stage, kwargs)}: {str(exc).strip().splitlines()[0]}") from exc
    choices = _documented_choices(fields.get("loss_type"))
    values = built.loss_type if isinstance(built.loss_type, list) else [built.loss_type]
    for value in values:
        if choices and value not in choices:
            raise UsageError(
                f"{stage.name}.loss_type: {value!r} is not a loss of TRL {trl.__version__}'s {cls.__name__} "
                f"(one of {', '.join(choices)})"
            )


def _probe(cls: type, kwargs: dict[str, Any]) -> Any:
    """`cls` built by its own __init__ and __post_init__ (TRL's and transformers' checks) without their side
    effects: no device or process-group setup (the device is the CPU), no DeepSpeed plugin (neither from the
    config nor from `accelerate launch`'s ACCELERATE_USE_DEEPSPEED), no TF32 switch; bf16 accepted as on a GPU."""
    import torch

    quiet = type(cls.__name__, (cls,), {"_setup_devices": torch.device("cpu")})
    launched = os.environ.pop("ACCELERATE_USE_DEEPSPEED", None)
    try:
        return quiet(**{**kwargs, "use_cpu": True, "deepspeed": None, "tf32": None})
    finally:
        if launched is not None:
            os.environ["ACCELERATE_USE_DEEPSPEED"] = launched


def _culprit(stage: TrainStage, kwargs: dict[str, Any]) -> str:
    """The section key whose removal makes TRL accept the config ("sft.key"), else the section's name."""
    cls = trl_class(stage.name)
    for key in stage.options:
        rest = dataclasses.replace(stage, options={k: v for k, v in stage.options.items() if k != key})
        try:
            _probe(cls, rest.trl_kwargs(Path(kwargs["output_dir"]), 0))
        except (TypeError, ValueError):
            continue
        return f"{stage.name}.{key}"
    return stage.name


def _check_scalar(value: Any, hint: Any, where: str) -> None:
    """A YAML value against TRL's field type where that is bool, int or float (or None); TRL checks the rest."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    allowed = set(typing.get_args(hint)) if union else {hint}
    if not allowed <= {bool, int, float, type(None)} or (value is None and type(None) in allowed):
        return
    if isinstance(value, bool):
        ok = bool in allowed
    elif isinstance(value, int):
        ok = bool({int, float} & allowed)
    else:
        ok = isinstance(value, float) and float in allowed
    if not ok:
        names = " or ".join(t.__name__ for t in (bool, int, float) if t in allowed)
        note = " (YAML reads it as text: write a number with a dot, e.g. 5.0e-6)" if _numeric_text(value) else ""
        raise UsageError(f"{where}: expected {names}, got {value!r}{note}")


def _numeric_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _documented_choices(f: dataclasses.Field[Any] | None) -> list[str]:
    """The values TRL's help text lists for a field ("Possible values are ..."), else none. TRL's DPO trainer
    rejects an unknown loss only at its first step (after sampling and SFT): this check makes it fail now."""
    if f is None:
        return []
    _, found, tail = f.metadata.get("help", "").partition("Possible values are")
    return list(dict.fromkeys(re.findall(r"`'?(\w+)'?`", re.split(r"\.\s", tail)[0]))) if found else []
