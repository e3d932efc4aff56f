"""The `fusebench` command. Subcommands stay thin: they parse, call a module, print."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from fusebench.cli_common import add_store_args, open_store, tag, whole_number
from fusebench.errors import UsageError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"fusebench: error: {message}", file=sys.stderr)
        raise SystemExit(2)


_positive_int = whole_number(1)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def cmd_eval(args: argparse.Namespace) -> int:
    if args.suite and args.benchmarks:
        raise UsageError("give --suite or --benchmarks, not both")
    if args.engine == "lm-eval":
        return _eval_lm_eval(args)
    from fusebench.backends import BackendOptions, make_backend
    from fusebench.evaluate import EvalConfig, describe_incomplete, run_eval
    from fusebench.exits import EXIT_INCOMPLETE, Interrupted
    from fusebench.progress import progress_wanted
    from fusebench.report.export import export_run
    from fusebench.report.table import results_table

    generation = {
        k: v
        for k, v in {
            "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature,
            "top_p": args.top_p,
        }.items()
        if v is not None
    }
    config = EvalConfig(
        model=args.model,
        backend=args.backend,
        suite=args.suite or "demo",
        benchmarks=[b.strip() for b in args.benchmarks.split(",") if b.strip()] if args.benchmarks else None,
        limit=args.limit,
        seed=args.seed,
        generation=generation,
        no_cache=args.no_cache,
        tags=_tags(args),
        progress=progress_wanted(args.progress),
        judge=_judge_options(args),
    )
    store = open_store(args, writable=True)
    options = BackendOptions(
        batch_size=args.batch_size,
        dtype=args.dtype,
        device=args.device,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
        tensor_parallel_size=args.tensor_parallel_size,
        data_parallel_size=args.data_parallel_size,
        max_model_len=args.max_model_len,
        gpu_memory_utilization=args.gpu_memory_utilization,
        enforce_eager=args.enforce_eager,
        pipeline_parallel_size=args.pipeline_parallel_size,
        distributed_executor_backend=args.distributed_executor_backend,
        max_num_seqs=args.max_num_seqs,
        enable_prefix_caching=not args.no_prefix_caching,
    )
    try:
        outcome = run_eval(config, store, lambda: make_backend(args.backend, args.model, options))
    except Interrupted as stop:
        run = f"run {stop.run_id} " if stop.run_id else ""
        print(f"fusebench: {run}interrupted ({stop.signal_name}); what finished is stored: rerun the same command "
              "to resume", file=sys.stderr)  # fmt: skip
        return stop.exit_code
    folder = export_run(store, outcome.run_id, args.output_dir)
    print(results_table(outcome.results, speed=outcome.speed))
    print(
        f"\nrun {outcome.run_id}{' (resumed)' if outcome.resumed else ''}: "
        f"{outcome.model_calls} generated, {outcome.cached} from cache; per-sample logs in {folder}"
    )
    if outcome.status != "complete":
        print(
            f"fusebench: run {outcome.run_id} is INCOMPLETE ({describe_incomplete(outcome.incomplete)}); rerun the "
            "same command (with a higher --judge-budget-usd if the budget stopped it) to finish it",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    return 0


def _eval_lm_eval(args: argparse.Namespace) -> int:
    """`fusebench eval --engine lm-eval --tasks ...`: lm-eval runs the tasks, fusebench stores them as a run."""
    from fusebench.interop.lm_eval_engine import run_lm_eval_engine
    from fusebench.report.export import export_run
    from fusebench.report.table import results_table

    tasks = [t.strip() for t in (args.tasks or "").split(",") if t.strip()]
    if not tasks:
        raise UsageError("--engine lm-eval needs --tasks (lm-eval task names or task .yaml paths)")
    store = open_store(args, writable=True)
    run_id = run_lm_eval_engine(args.model, tasks, args.limit, store, _tags(args), args.batch_size)
    folder = export_run(store, run_id, args.output_dir)
    print(results_table(store.get_benchmark_results(run_id)))
    print(f"\nrun {run_id} (lm-eval engine); per-sample logs in {folder}")
    return 0


def _judge_options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """JudgeOptions from the --judge* flags. The key comes from --judge-api-key-env (default OPENAI_API_KEY); a local
    --judge-base-url server is used without a key when that default variable is not set."""
    from fusebench.judging.stage import OPENAI_URL, JudgeOptions

    base_url = args.judge_base_url or OPENAI_URL
    key_env = args.judge_api_key_env
    if key_env is None:
        key_env = "OPENAI_API_KEY" if base_url == OPENAI_URL or os.environ.get("OPENAI_API_KEY") else None
    return JudgeOptions(
        model=args.judge,
        backend=args.judge_backend,
        base_url=base_url,
        api_key_env=key_env or None,
        concurrency=args.judge_concurrency,
        budget_usd=args.judge_budget_usd,
        price_input_per_mtok=args.judge_price_input,
        price_output_per_mtok=args.judge_price_output,
        max_tokens=args.judge_max_tokens,
    )


def _tags(args: argparse.Namespace) -> dict[str, str]:
    tags = dict(args.tag or [])
    if args.model and "step" not in tags:
        name = Path(args.model).name
        if name.startswith("checkpoint-") and name.removeprefix("checkpoint-").isdigit():
            tags["step"] = name.removeprefix("checkpoint-")
    return tags


def cmd_runs(args: argparse.Namespace) -> int:
    from fusebench.report.commands import runs_table

    print(runs_table(open_store(args)))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from fusebench.models import models_listing

    print(models_listing())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from fusebench.report.table import breakdown_table, results_table
    from fusebench.store import RunSummary

    store = open_store(args)
    run = store.get_run(args.run_id)
    results = store.get_benchmark_results(run["id"])
    print(f"run {run['id']}  model {run['model']}  backend {run['backend']}  status {run['status']}")
    print(results_table(results, speed=RunSummary.from_json(run["summary"]).speed))
    groups = breakdown_table(results)
    if groups:
        print(f"\n{groups}")
    print(f"\nper-sample logs: {args.output_dir / 'runs' / run['id'] / 'samples'}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from fusebench.preflight import spec_problem
    from fusebench.spec import all_benchmarks, all_suites, broken_benchmarks, broken_suites

    broken = dict(broken_benchmarks())
    rows = []
    for s in all_benchmarks().values():
        problem = spec_problem(s)
        if problem:
            broken[s.id] = problem
            continue
        rows.append([s.id, s.category, s.size or "", s.metric, s.scorer])
    print(tabulate(rows, headers=["benchmark", "category", "size", "metric", "scorer"]))
    for name, problem in sorted(broken.items()):
        print(f"BROKEN {name}: {problem}")
    print()
    suites = [[s.id, len(s.entries), ", ".join(e.benchmark for e in s.entries)] for s in all_suites().values()]
    print(tabulate(suites, headers=["suite", "benchmarks", "members"], maxcolwidths=[None, None, 80]))
    for name, problem in sorted(broken_suites().items()):
        print(f"BROKEN suite {name}: {problem}")
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from fusebench.evaluate import describe_incomplete, rescore_run
    from fusebench.exits import EXIT_INCOMPLETE
    from fusebench.report.export import export_run
    from fusebench.report.table import results_table

    store = open_store(args)
    results = rescore_run(store, args.run_id)
    run = store.get_run(args.run_id)
    export_run(store, run["id"], args.output_dir)
    print(results_table(results))
    if run["status"] != "complete":
        print(f"fusebench: run {run['id']} is INCOMPLETE ({describe_incomplete(run['summary']['incomplete'])}); "
              "rerun its eval to finish it", file=sys.stderr)  # fmt: skip
        return EXIT_INCOMPLETE
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser. Given the command a user typed, a built-in one's parser leaves out the interop commands and
    the plugins: their modules import what a reading command never needs (scipy, the training stack)."""
    parser = _Parser(prog="fusebench", description="Is this checkpoint better than its base, where, and by how much?")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--include-path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of benchmark specs (and suites/) added to the bundled ones; repeatable, before the command "
        "(also $FUSEBENCH_INCLUDE_PATH)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("eval", help="evaluate a model on a suite or benchmarks")
    p.add_argument("model", nargs="?", help="hub id[@revision], local dir, .gguf file or alias (default: bundled)")
    p.add_argument("--suite", help="suite id (default: demo)")
    p.add_argument("--benchmarks", help="comma-separated benchmark ids (instead of --suite)")
    p.add_argument("--limit", type=_positive_int, help="first N items of each benchmark")
    p.add_argument("--backend", default="hf", help="hf (default), vllm, or openai (any /v1/chat/completions server)")
    p.add_argument("--base-url", help="openai backend: server URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--api-key-env", help="openai backend: name of the env var holding the API key")
    p.add_argument("--concurrency", type=_positive_int, default=16, help="openai backend: parallel requests")
    p.add_argument("--tensor-parallel-size", type=_positive_int, default=1, help="vllm backend")
    p.add_argument("--data-parallel-size", type=_positive_int, default=1, help="vllm backend: engines over shards")
    p.add_argument("--max-model-len", type=_positive_int, help="vllm backend")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vllm backend")
    p.add_argument("--enforce-eager", action="store_true", help="vllm backend: no torch.compile (faster start)")
    p.add_argument(
        "--pipeline-parallel-size", type=_positive_int, default=1, help="vllm backend: layers split over nodes"
    )
    p.add_argument(
        "--distributed-executor-backend", choices=["ray", "mp"], help="vllm backend: ray for multi-node runs"
    )
    p.add_argument("--max-num-seqs", type=_positive_int, help="vllm backend: sequences decoded together")
    p.add_argument("--no-prefix-caching", action="store_true", help="vllm backend: turn prefix caching off")
    p.add_argument(
        "--engine",
        choices=["fusebench", "lm-eval"],
        default="fusebench",
        help="lm-eval: run --tasks with lm-eval's Python API and store the result as a run",
    )
    p.add_argument("--tasks", help="--engine lm-eval: comma-separated lm-eval task names or task .yaml paths")
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--max-new-tokens", type=_positive_int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cache", action="store_true", help="regenerate even when stored results exist")
    p.add_argument("--tag", type=tag, action="append", help="key=value, e.g. family=llama-fuse (repeatable)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress", action="store_true", default=None, help="draw progress bars even when stderr is not a terminal"
    )
    shown.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars (default: on in a terminal)"
    )
    j = p.add_argument_group("judged benchmarks (alpaca_eval2, arena_hard, mt_bench, alignbench)")
    j.add_argument("--judge", metavar="MODEL", help="judge model for every judged benchmark (default: each spec's)")
    j.add_argument("--judge-backend", default="openai", choices=["openai", "hf"], help="hf: a local judge model")
    j.add_argument("--judge-base-url", metavar="URL", help="judge API (default: https://api.openai.com/v1)")
    j.add_argument(
        "--judge-api-key-env",
        metavar="NAME",
        help="env var holding the judge API key (default: OPENAI_API_KEY; optional for a --judge-base-url server)",
    )
    j.add_argument("--judge-concurrency", type=_positive_int, default=16, help="parallel judge requests")
    j.add_argument("--judge-budget-usd", type=_non_negative, help="stop judging (resumably) at this estimated spend")
    j.add_argument("--judge-price-input", type=_non_negative, metavar="USD", help="per million input tokens")
    j.add_argument("--judge-price-output", type=_non_negative, metavar="USD", help="per million output tokens")
    j.add_argument("--judge-max-tokens", type=_positive_int, help="cap on the judge's answer length (small judges)")
    add_store_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("runs", help="list stored runs")
    add_store_args(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("show", help="one run's results table")
    p.add_argument("run_id")
    add_store_args(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("list", help="benchmarks and suites")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("models", help="built-in model aliases: the package that ships each, where it is found")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("rescore", help="re-score a stored run without calling the model")
    p.add_argument("run_id")
    add_store_args(p)
    p.set_defaults(func=cmd_rescore)

    from fusebench.report.commands import add_report_commands

    add_report_commands(sub)
    if command in sub.choices:
        return parser
    from fusebench.interop import register as add_interop_commands
    from fusebench.plugins import register_plugins

    add_interop_commands(sub)  # `import lm-eval`, `export`
    register_plugins(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named on a command line: its first word that is neither an option nor the value of
    `--include-path` (`--debug` takes no value)."""
    words = iter(argv)
    for word in words:
        if word == "--include-path":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    try:
        if args.include_path:
            from fusebench.spec import include

            include(args.include_path)
        return int(args.func(args))
    except UsageError as exc:
        if args.debug:
            raise
        print(f"fusebench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fusebench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `fusebench list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if args.debug or os.environ.get("FUSEBENCH_DEBUG"):
            raise
        print(f"fusebench: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
