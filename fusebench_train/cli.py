"""Subcommands added to `fusebench` through the `fusebench.plugins` entry point.

fusebench fuse-and-eval CONFIG [--from STAGE]     every stage, then the gains table
fusebench fuse-and-eval CONFIG --dry-run          the plan only (no model, prompt files may be absent)
fusebench fuse STAGE CONFIG [--from STAGE]        the stages up to STAGE (sample|score|build|sft|dpo|eval)
fusebench fuse plan CONFIG                        the plan only
fusebench fuse validate CONFIG                    base/SFT/fused on the validation prompts (for tuning)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fusebench_train.pipeline import STAGES


def _pipeline(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from fusebench_train.config import load_config
    from fusebench_train.pipeline import Pipeline

    return Pipeline(load_config(args.config, work_dir=args.work_dir))


def cmd_plan(args: argparse.Namespace) -> int:
    """Print the plan of a config without running anything."""
    from fusebench_train.config import load_config
    from fusebench_train.plan import format_plan, make_plan

    cfg = load_config(args.config, work_dir=args.work_dir, require_files=False)
    print(format_plan(make_plan(cfg, str(args.config))))
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    """Run the stages up to args.stage (or print the plan)."""
    if args.stage == "plan":
        return cmd_plan(args)
    if args.stage == "validate":
        _pipeline(args).validate()
        return 0
    _pipeline(args).run(until=args.stage, force_from=args.from_stage)
    return 0


def cmd_fuse_and_eval(args: argparse.Namespace) -> int:
    """Run every stage; the eval stage prints the gains table (reprinted here when it was skipped)."""
    from fusebench_train.gains import format_gains

    if args.dry_run:
        return cmd_plan(args)
    pipeline = _pipeline(args)
    outcome = pipeline.run(until="eval", force_from=args.from_stage)
    if outcome["eval"] == "skipped":
        print(format_gains(json.loads(pipeline.artifact("eval").read_text())))
    print(f"\n{stage_times(pipeline.manifest.data)}")
    print(f"work dir: {pipeline.work}; runs in {pipeline.store().safe_url}")
    return 0


def stage_times(manifest: dict[str, dict[str, Any]]) -> str:
    """One line: wall time of each finished stage (its last attempt) and the total."""
    times = [(s, manifest[s]["wall_s"]) for s in STAGES if "wall_s" in manifest.get(s, {})]
    parts = [f"{s} {t / 60:.1f} min" for s, t in times]
    return f"wall time per stage: {', '.join(parts)}; total {sum(t for _, t in times) / 60:.1f} min"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="fusion config YAML (see examples/fuse-tiny.yaml)")
    p.add_argument("--from", dest="from_stage", choices=STAGES, help="rerun this stage and every later one")
    p.add_argument("--work-dir", help="override the config's work_dir")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `fuse-and-eval` and `fuse STAGE` to fusebench's subcommands."""
    p = subparsers.add_parser("fuse-and-eval", help="implicit model fusion (FuseChat-3.0): all stages, then gains")
    _common(p)
    p.add_argument("--dry-run", action="store_true", help="print the plan (sizes, commands); run nothing")
    p.set_defaults(func=cmd_fuse_and_eval)

    p = subparsers.add_parser(
        "fuse", help="run fusion stages up to STAGE (skips the ones already done), plan, or validate"
    )
    p.add_argument("stage", choices=(*STAGES, "plan", "validate"))
    _common(p)
    p.set_defaults(func=cmd_fuse)
