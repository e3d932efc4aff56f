"""The `sft:` and `dpo:` sections are TRL's own SFTConfig / DPOConfig: options reach TRL unchanged, TRL's
rejections are one line with exit 2, fusebench's overlay defaults apply, and stage cache keys did not change."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from transformers.trainer_utils import SchedulerType

from fusebench import cli
from fusebench.keys import stable_hash
from fusebench_train.config import PromptSet, parse_config
from fusebench_train.trl_config import OVERLAY, trl_args, trl_class
from tests.conftest import minimal_fuse_config

pytestmark = pytest.mark.usefixtures("train_plugin")  # as if the plugin's entry point were installed


def test_options_fusebench_never_declared_reach_trl_unchanged(tmp_path: Path) -> None:
    dpo = {
        "loss_type": ["apo_zero", "sft"],  # neither was in fusebench's old whitelist of 5 losses
        "loss_weights": [1.0, 0.2],
        "lr_scheduler_type": "cosine_with_min_lr",
        "lr_scheduler_kwargs": {"min_lr_rate": 0.1},
        "max_grad_norm": 0.5,
    }
    sft = {"packing": True, "neftune_noise_alpha": 5.0, "assistant_only_loss": True, "loss_type": "dft"}
    cfg = parse_config(minimal_fuse_config(tmp_path, sft=sft, dpo=dpo))
    args = trl_args("dpo", cfg.trl_kwargs("dpo"))  # what run_dpo hands to DPOTrainer
    assert type(args).__name__ == "DPOConfig"
    assert (args.loss_type, args.loss_weights) == (["apo_zero", "sft"], [1.0, 0.2])
    assert args.lr_scheduler_type == SchedulerType.COSINE_WITH_MIN_LR
    assert (args.lr_scheduler_kwargs, args.max_grad_norm) == ({"min_lr_rate": 0.1}, 0.5)
    args = trl_args("sft", cfg.trl_kwargs("sft"))
    assert type(args).__name__ == "SFTConfig"
    assert (args.packing, args.neftune_noise_alpha, args.assistant_only_loss) == (True, 5.0, True)
    assert args.loss_type == "dft"


def test_overlay_defaults_apply_and_a_section_overrides_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TQDM_DISABLE", "1")
    cfg = parse_config({**minimal_fuse_config(tmp_path), "seed": 7})
    sft = trl_args("sft", cfg.trl_kwargs("sft"))
    trl_defaults = trl_class("sft")(output_dir=str(tmp_path / "x"), use_cpu=True)
    for key, value in OVERLAY["sft"].items():  # every overlay key differs from TRL's default and is applied
        assert getattr(trl_defaults, key) != getattr(sft, key) == value, key
    assert (sft.learning_rate, sft.per_device_train_batch_size, sft.gradient_accumulation_steps) == (5e-6, 4, 32)
    assert (sft.bf16, sft.gradient_checkpointing, sft.warmup_steps, sft.max_length) == (False, False, 0.1, 2048)
    assert (sft.seed, sft.data_seed, sft.report_to, sft.disable_tqdm) == (7, 7, [], True)
    assert Path(sft.output_dir) == tmp_path / "w" / "sft" / "checkpoints"
    dpo = trl_args("dpo", cfg.trl_kwargs("dpo"))
    assert (dpo.loss_type, dpo.beta, dpo.learning_rate, dpo.num_train_epochs) == (["sigmoid_norm"], 10.0, 8e-7, 1.0)
    assert dpo.precompute_ref_log_probs and Path(dpo.output_dir) == tmp_path / "w" / "dpo" / "checkpoints"
    cfg = parse_config(
        minimal_fuse_config(tmp_path, sft={"gradient_checkpointing": True, "seed": 3, "learning_rate": 1.0e-5})
    )
    sft = trl_args("sft", cfg.trl_kwargs("sft"))
    assert (sft.gradient_checkpointing, sft.seed, sft.data_seed, sft.learning_rate) == (True, 3, 0, 1e-5)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"dpo": {"lr_scheduler_type": "bogus"}}, "dpo.lr_scheduler_type: bogus is not a valid SchedulerType"),
        ({"dpo": {"loss_type": "kto"}}, "dpo.loss_type: 'kto' is not a loss of TRL"),
        ({"dpo": {"loss_type": ["sigmoid", "nope"]}}, "dpo.loss_type: 'nope' is not a loss of TRL"),
        ({"sft": {"loss_type": "dpo"}}, "sft.loss_type: 'dpo' is not a loss of TRL .*SFTConfig \\(one of nll, dft\\)"),
        ({"sft": {"learning_rat": 1.0e-5}}, "sft.learning_rat: unknown key, .*SFTConfig; did you mean learning_rate"),
        ({"dpo": {"precompute_ref_log_probs_x": True}}, "dpo.precompute_ref_log_probs_x: unknown key"),
        ({"sft": {"warmup_ratio": 0.1}}, "sft.warmup_ratio: renamed to warmup_steps"),
        ({"sft": {"learning_rate": "5e-6"}}, "sft.learning_rate: expected float, got '5e-6' \\(YAML reads it as text"),
        ({"dpo": {"beta": True}}, "dpo.beta: expected float, got True"),
        ({"sft": {"max_steps": 2.5}}, "sft.max_steps: expected int"),
        ({"sft": {"logging_steps": 0}}, "sft.logging_steps: logging strategy .* requires non-zero"),
        ({"sft": {"save_steps": 2.5}}, "sft.save_steps: --save_steps must be an integer"),
        ({"dpo": {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0]}}, "dpo.loss_type: `loss_weights` must"),
        ({"sft": {"output_dir": "elsewhere"}}, "sft.output_dir: set by fusebench"),
        ({"sft": {"save_total_limit": 0}}, "sft.save_total_limit: must be >= 1"),
        ({"dpo": {"gradient_accumulation_steps": 0}}, "dpo.gradient_accumulation_steps: must be >= 1"),
        ({"dpo": ["beta", 0.1]}, "dpo: expected a mapping of TRL DPOConfig options"),
    ],
)
def test_a_value_trl_rejects_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: dict[str, Any], message: str
) -> None:
    config = tmp_path / "fuse.yaml"
    config.write_text(yaml.safe_dump(minimal_fuse_config(tmp_path, **section)))
    assert cli.main(["fuse", "plan", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"fusebench: error: config {config}: ")
    assert re.search(message, err), err


def test_deepspeed_file_resolves_beside_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "zero2.json").write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    monkeypatch.chdir(tmp_path)  # not where the file is
    cfg = parse_config(minimal_fuse_config(tmp_path, sft={"deepspeed": "zero2.json"}), base_dir=tmp_path / "cfg")
    assert cfg.trl_kwargs("sft")["deepspeed"] == str(tmp_path / "cfg" / "zero2.json")
    assert cfg.sft.options["deepspeed"] == "zero2.json"  # as written: the stage's cache key


def test_stage_cache_keys_are_those_of_the_dataclass_config(tmp_path: Path) -> None:
    """Digests computed by the config before the pass-through (fusebench's SFT/DPO dataclasses, commit a16d83b):
    a finished sft or dpo stage stays valid. `warmup_steps` was written `warmup_ratio` then."""
    sft = {"learning_rate": 2.0e-5, "num_train_epochs": 2, "per_device_train_batch_size": 4,
           "gradient_accumulation_steps": 1, "max_length": 512, "save_steps": 2, "logging_steps": 1}  # fmt: skip
    dpo = {"loss_type": "sigmoid_norm", "beta": 10.0, "learning_rate": 5.0e-6, "num_train_epochs": 2,
           "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "max_length": 512, "save_steps": 2,
           "logging_steps": 1, "warmup_steps": 0.05, "bf16": True, "gradient_checkpointing": True,
           "precompute_ref_log_probs": False}  # fmt: skip
    for sections, digests in (
        ({}, ("279598ac38b4d3e97d631f28715d7a24a65998ed480facecb091b32804daca3d",
              "caf74c372c29af3647a90ca8e1782fca66e447602ad9e26d3d2d74bf84dc27d0")),
        ({"sft": sft, "dpo": dpo}, ("52cc52a3d1fef09021c7790d7daa09358937c45c856d41e44ee80906429c21be",
                                    "bac879aead70d42c5063b376f0d35cd56981361447134f062ea9c7168238f015")),
    ):  # fmt: skip
        cfg = parse_config(minimal_fuse_config(tmp_path, **sections))
        assert (stable_hash(cfg.section("sft")), stable_hash(cfg.section("dpo"))) == digests
    cfg = parse_config(
        minimal_fuse_config(tmp_path, dpo={**dpo, "max_grad_norm": 0.5})
    )  # a new option is part of the key
    assert stable_hash(cfg.section("dpo")) != digests[1]


def test_loading_under_accelerate_launch_with_deepspeed_sets_up_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`accelerate launch` with a DeepSpeed config exports ACCELERATE_USE_DEEPSPEED; TRL's validation at load must
    not build a DeepSpeed plugin from it (DeepSpeed is not installed here: that would fail; on a GPU node it would
    leave global DeepSpeed state before the trainer's own)."""
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    cfg = parse_config(minimal_fuse_config(tmp_path, sft={"max_grad_norm": 0.5}))
    assert cfg.sft.get("max_grad_norm") == 0.5 and not is_deepspeed_zero3_enabled()
    assert os.environ["ACCELERATE_USE_DEEPSPEED"] == "true"


def test_prompt_set_cache_keys_are_those_of_earlier_releases_until_a_new_field_is_set() -> None:
    """Digests of the prompt sets as the sample and score stages hashed them before `prefill` and `expected_rows`
    existed (commit 91bea79): a finished sample stage stays valid. A prefill is part of the key; `expected_rows` (a
    size hint for the plan) never is."""
    code = PromptSet(path="data/code.jsonl", domain="code", id_field="task_id", prompt_template="{text}",
                     target_field="test_list")  # fmt: skip
    math = PromptSet(path="data/math.jsonl", domain="math")
    assert stable_hash(code.hashed()) == "222b54501c285a467d4207831bb33be3dfa6dae6bf882f55d4a19284fc02b9f4"
    assert stable_hash(math.hashed()) == "1ff50250085aeec8fe09618f52a3c2448dfa17e8c1642084332abc5ca745a91d"
    assert stable_hash(replace(code, prefill="```python\n").hashed()) != stable_hash(code.hashed())
    assert stable_hash(replace(math, expected_rows=10).hashed()) == stable_hash(math.hashed())
