"""This tree's end-to-end throughput against a baseline commit's, on this machine, in one run.

    .venv/bin/python bench/versus.py [--baseline b313c07] [--rounds 3] [throughput.py arguments]

Machines drift: the same commit gave 26k recipients/s durable one day and 19k on another. A
figure is only comparable with one measured beside it, so this checks the baseline out into a
temporary git worktree and runs `bench/throughput.py` alternately in the baseline and in this
tree, ``--rounds`` times each, then prints each figure's median, min and max and this tree's
median as a ratio of the baseline's. Both use this tree's virtualenv; each run starts its own
stack, so they never share a process.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Rows of `bench/throughput.py`'s table: (label in the table, name here).
FIGURES = (
    ("balsong (POST -> every outcome durable)", "durable /s"),
    ("balsong (POST -> job finished, reports in)", "finished /s"),
    ("naive (1 message + 1 call + 1 INSERT each)", "naive /s"),
)


def run_throughput(tree: Path, extra: list[str]) -> dict[str, float]:
    """One run of the tree's own `bench/throughput.py`; its figures by name."""
    completed = subprocess.run(
        [sys.executable, str(tree / "bench" / "throughput.py"), *extra],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"bench/throughput.py failed in {tree}:\n{completed.stderr[-3000:]}")
    figures: dict[str, float] = {}
    for label, name in FIGURES:
        match = re.search(re.escape(label) + r".*?([\d,]+)\s*$", completed.stdout, re.MULTILINE)
        if match is None:
            raise SystemExit(f"no {label!r} row in the output of {tree}:\n{completed.stdout}")
        figures[name] = float(match.group(1).replace(",", ""))
    figures["x naive"] = figures["durable /s"] / figures["naive /s"]
    return figures


def summary(runs: list[dict[str, float]], name: str) -> tuple[float, float, float]:
    values = [run[name] for run in runs]
    return statistics.median(values), min(values), max(values)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default="b313c07", help="commit to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="balsong-baseline-") as tmp:
        baseline_tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(baseline_tree), args.baseline],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        runs: dict[str, list[dict[str, float]]] = {"baseline": [], "this tree": []}
        try:
            for round_number in range(1, args.rounds + 1):
                for side, tree in (("baseline", baseline_tree), ("this tree", ROOT)):
                    figures = run_throughput(tree, extra)
                    runs[side].append(figures)
                    shown = ", ".join(f"{name} {value:,.1f}" for name, value in figures.items())
                    print(f"round {round_number} {side:<10} {shown}", flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(baseline_tree)], cwd=ROOT, check=False
            )
    print(
        f"\n{'figure':<14}{'baseline ' + args.baseline + ' median (min-max)':>40}"
        f"{'this tree median (min-max)':>34}{'ratio':>8}"
    )
    for name in ("durable /s", "finished /s", "naive /s", "x naive"):
        base, here = summary(runs["baseline"], name), summary(runs["this tree"], name)
        print(
            f"{name:<14}{f'{base[0]:,.1f} ({base[1]:,.1f}-{base[2]:,.1f})':>40}"
            f"{f'{here[0]:,.1f} ({here[1]:,.1f}-{here[2]:,.1f})':>34}{here[0] / base[0]:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
