"""Start-up time of the reading commands: wall time of `fusebench runs` and of a fully cached `fusebench eval` of the
demo suite (the bundled model; every answer already stored), for a baseline commit and for this tree.

The baseline is checked out into a temporary `git worktree` (removed afterwards) and run with the same venv through
PYTHONPATH, its own specs through FUSEBENCH_BENCHMARKS. Each side gets its own store (prompts may differ between
the two, so their cache keys may too), filled once by an untimed eval (minutes on CPU the first time; the stores
are kept under --work-dir, so later runs skip it). Each figure is the median of --repeat fresh processes.

    python perf/cli_startup.py [--baseline ce760e3] [--repeat 5]

Prints one line per figure, then `ratio:` = the geometric mean of the two before/after ratios.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Side:
    """A version of fusebench: where its code and specs are, and the store it reads."""

    label: str
    code: Path
    store: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(self.code),
            "FUSEBENCH_BENCHMARKS": str(self.code / "benchmarks"),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }

    def run(self, *args: str) -> float:
        """Wall seconds of `fusebench ARGS` in a fresh process (which must succeed)."""
        command = [sys.executable, "-m", "fusebench.cli", *args, "--output-dir", str(self.store)]
        started = time.perf_counter()
        proc = subprocess.run(command, env=self.env(), cwd=self.code, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(
                f"{self.label}: fusebench {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}"
            )
        return elapsed


EVAL = ("eval", "--suite", "demo", "--no-progress")


def measure(side: Side, repeat: int) -> tuple[float, float]:
    """Median wall seconds of `runs` and of a cached demo eval (after an untimed eval that fills the cache)."""
    side.run(*EVAL)
    evals = [side.run(*EVAL) for _ in range(repeat)]
    runs = [side.run("runs") for _ in range(repeat)]
    return statistics.median(runs), statistics.median(evals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="ce760e3", help="git commit to compare with (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "fusebench-results" / "perf-cli-startup")
    args = parser.parse_args()

    worktree = Path(tempfile.mkdtemp(prefix="fusebench-baseline-")) / "tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.baseline], check=True,
                   capture_output=True)  # fmt: skip
    try:
        before = measure(Side(f"baseline {args.baseline}", worktree, args.work_dir / "baseline"), args.repeat)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=True)
        worktree.parent.rmdir()
    after = measure(Side("this tree", REPO, args.work_dir / "current"), args.repeat)

    for what, b, a in zip(("fusebench runs", "cached demo eval"), before, after, strict=True):
        print(f"{what}: baseline {args.baseline} {b:.2f} s, this tree {a:.2f} s (median of {args.repeat})")
        print(f"{what}: ratio {b / a:.2f}")
    print(f"ratio: {math.sqrt(before[0] / after[0] * before[1] / after[1]):.2f}")


if __name__ == "__main__":
    main()
