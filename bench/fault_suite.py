"""Run every fault scenario (tests/fault, marker ``fault``) and print one table: scenario,
recipients, lost, duplicated carrier submissions, counters = durable rows, time to recover, and
the longest stall at the carrier (where the scenario measures it).

    .venv/bin/python bench/fault_suite.py [pytest arguments, e.g. -k redis]

The scenarios start their own PostgreSQL, Redis and RabbitMQ (never the machine's shared ones)
and a 20,000-recipient job each; the whole run takes about ten minutes on two cores. "Time to
recover" is from the end of the fault (process restarted, server back, job resumed) until the
carrier accepts the job's recipients again; "-" where the fault does not stop the job.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "faults.jsonl"
        env = {**os.environ, "BALSONG_FAULT_TABLE": str(table)}
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "fault",
            "tests/fault",
            "-q",
            "-p",
            "no:cacheprovider",
            *argv,
        ]
        result = subprocess.run(command, cwd=ROOT, env=env, check=False)
        rows = [orjson.loads(line) for line in table.read_bytes().splitlines()] if table.exists() else []
    print()
    header = ("scenario", "recipients", "lost", "duplicated", "counters = rows", "recover (s)", "stall (s)")
    print(
        f"{header[0]:<40} {header[1]:>10} {header[2]:>5} {header[3]:>10} {header[4]:>15} {header[5]:>11}"
        f" {header[6]:>9}"
    )
    for row in rows:
        recover = "-" if row["recover_seconds"] is None else f"{row['recover_seconds']:.1f}"
        stall = "-" if row.get("stall_seconds") is None else f"{row['stall_seconds']:.1f}"
        print(
            f"{row['scenario']:<40} {row['recipients']:>10,} {row['lost']:>5} {row['duplicated']:>10}"
            f" {'yes' if row['counters_equal'] else 'NO':>15} {recover:>11} {stall:>9}"
        )
    print(
        f"\npytest exit code {result.returncode} ({'all passed' if result.returncode == 0 else 'FAILURES'})"
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
