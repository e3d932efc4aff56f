"""What every subcommand module shares: argparse value types, the store options, and opening the store.

cli.py, report/commands.py, interop/* and plugins build their subcommands with these; none of them imports cli.py
(which imports them), so the command modules form no cycle."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fusebench.errors import UsageError

if TYPE_CHECKING:
    from fusebench.store import Store

DEFAULT_OUTPUT = Path("fusebench-results")


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= minimum, else one clear message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def tag(text: str) -> tuple[str, str]:
    """An argparse type: `key=value`, both non-empty."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"tags look like key=value (both non-empty), got {text!r}")
    return key, value


def add_store_args(p: argparse.ArgumentParser) -> None:
    """--output-dir and --store: where a command finds (or puts) its results store."""
    p.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT, help="results folder (default: %(default)s)")
    p.add_argument("--store", help="database URL or SQLite file (default: OUTPUT_DIR/fusebench.db)")


def open_store(args: argparse.Namespace, writable: bool = False) -> Store:
    """The store named by add_store_args' options. A reading command never creates one (UsageError when absent);
    a writing one checks first that the output folder is writable."""
    from fusebench.store import Store, store_url

    url = store_url(args.store, args.output_dir)
    if writable:
        _check_writable(args.output_dir)
    elif not args.store and not (args.output_dir / "fusebench.db").exists():
        raise UsageError(f"no results store in {args.output_dir} (run `fusebench eval` first, or pass --store)")
    elif url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise UsageError(f"no results store at {url.removeprefix('sqlite:///')} (reading commands do not create one)")
    return Store(url)


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".fusebench-write-test-"):
            pass  # a name of its own: commands started together must not remove each other's probe
    except OSError as exc:
        raise UsageError(f"output directory {folder} is not writable: {exc.strerror}") from exc
