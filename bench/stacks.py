"""CPU by pipeline stage, from the py-spy profiles `bench/cpu_by_process.py --py-spy DIR` wrote.

    .venv/bin/python bench/stacks.py DIR [--rate 100]

Each sample's stage is that of its deepest frame in balsong's own code (a psycopg call made by
the flusher counts as the flusher's), by the file it is in (`STAGES`); a sample with no frame of
balsong's is put under the library it is in (Dramatiq, pika, uvicorn...). Printed: CPU seconds
per kind of process and stage (samples / rate). The profiles sample only the thread holding the
GIL (`py-spy --gil`): time spent waiting for the GIL, a socket or a lock is not counted, and C
code that releases the GIL (psycopg waiting on PostgreSQL) is not either.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

#: (path fragment of a frame's file, stage), first match wins, tried on the deepest frame first.
STAGES: tuple[tuple[str, str], ...] = (
    ("engine/intake/job_store", "intake: COPY"),
    ("engine/intake/template", "render"),
    ("engine/intake/encoding", "render"),
    ("engine/intake/", "intake: parse/validate"),
    ("api/", "API: routing, auth, JSON"),
    ("engine/dispatch/planning", "planning"),
    ("actors/jobs", "planning"),
    ("engine/dispatch/claims", "claim"),
    ("engine/dispatch/worker_leases", "claim"),
    ("engine/dispatch/leases", "claim"),
    ("engine/dispatch/ratelimit", "rate limit"),
    ("engine/dispatch/rate_policy", "rate limit"),
    ("carriers/simulator", "simulator"),
    ("carriers/", "carrier HTTP"),
    ("engine/dispatch/sending", "send loop"),
    ("engine/lifecycle/results", "result stream"),
    ("engine/lifecycle/reports", "report poll"),
    ("engine/lifecycle/report_matching", "report poll"),
    ("engine/lifecycle/flush", "flusher"),
    ("engine/lifecycle/transitions", "flusher"),
    ("engine/lifecycle/completion", "job completion"),
    ("engine/lifecycle/", "lifecycle (other)"),
    ("engine/callbacks/", "callbacks"),
    ("scheduler/", "scheduler (other duties)"),
    ("actors/", "actors (other)"),
    ("engine/", "engine (other)"),
    ("metrics/", "metrics"),
    ("cli/", "process start"),
)
#: Where a sample without balsong's code is: the library of its deepest frame.
LIBRARY = re.compile(r"site-packages/([A-Za-z_]+)")


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        path = frame[frame.rfind("(") + 1 :]
        if "site-packages" in path or path.startswith("<"):
            continue
        for fragment, stage in STAGES:
            if fragment in path:
                return stage
    for frame in reversed(frames):
        found = LIBRARY.search(frame)
        if found:
            return f"library: {found.group(1)}"
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--rate", type=float, default=100.0, help="py-spy's samples per second")
    args = parser.parse_args()
    seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for profile in sorted(args.directory.glob("*.txt")):
        kind = profile.stem.rsplit("-", 1)[0]
        for line in profile.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            seconds[kind][stage_of(stack.split(";"))] += int(count) / args.rate
    for kind, stages in sorted(seconds.items(), key=lambda item: -sum(item[1].values())):
        print(f"{kind}: {sum(stages.values()):.1f} s sampled")
        for stage, value in sorted(stages.items(), key=lambda item: -item[1]):
            if value >= 0.05:
                print(f"  {stage:<32} {value:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
