"""Where a benchmark's CPU goes: CPU seconds per balsong process, and per PostgreSQL session by the
kind of process it serves, while another benchmark runs; optionally a py-spy profile of each.

    .venv/bin/python bench/cpu_by_process.py [--py-spy DIR] -- bench/throughput.py --naive-sample 0

Every half second it lists the machine's balsong processes (``cli.main <kind>``, the carrier
simulator, the benchmark itself) and PostgreSQL's sessions (``pg_stat_activity``: each balsong
process names its kind in ``application_name``), and reads each one's CPU time from /proc; a
process's last reading is its total. Printed when the benchmark ends: CPU seconds per kind of
process, its PostgreSQL sessions' beside it, and the share of the whole. With ``--py-spy DIR``
each balsong process is sampled by ``py-spy record`` into ``DIR/<kind>-<pid>.txt`` (collapsed
stacks: ``bench/stacks.py`` sums them by stage); keep those files out of the repository. With
``--timeline FILE`` each kind's CPU so far is written every half second, to see which process
works when (the sending phase against the tail where reports come in).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg

TICKS = os.sysconf("SC_CLK_TCK")
POLL_SECONDS = 0.5


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of ``pid`` (its threads included), or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def balsong_processes(bench_pid: int) -> dict[int, str]:
    """pid -> kind for the balsong processes now running."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        pid = int(entry.name)
        if pid == bench_pid:
            found[pid] = "benchmark (client)"
        elif "cli.main" in words:
            kind = words[words.index("cli.main") + 1] if words.index("cli.main") + 1 < len(words) else "?"
            if "--duties" in words[:-1]:  # the scheduler's report poll process
                kind += f" ({words[words.index('--duties') + 1]})"
            found[pid] = kind
        elif "carriers.simulator" in words:
            found[pid] = "simulator"
        elif "tests.support.receiver" in words:
            found[pid] = "callback receiver"
    return found


def postgres_sessions(conn: psycopg.Connection) -> dict[int, str]:
    """pid -> application_name of PostgreSQL's client sessions."""
    rows = conn.execute(
        "SELECT pid, coalesce(nullif(application_name, ''), 'other') FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    ).fetchall()
    return {int(pid): str(name) for pid, name in rows}


def postgres_background() -> dict[int, str]:
    """pid -> role of PostgreSQL's own processes (WAL writer, checkpointer, autovacuum...)."""
    found: dict[int, str] = {}
    for line in subprocess.run(
        ["ps", "-u", "postgres", "-o", "pid=,args="], capture_output=True, text=True
    ).stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        if "127.0.0.1(" in args or "[local]" in args:
            continue  # a client session: counted by its application_name
        found[int(pid)] = "postgres: " + (args.split(":")[-1].strip() or "postmaster")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--py-spy", type=Path, help="sample each balsong process into this directory")
    parser.add_argument(
        "--timeline",
        type=Path,
        help="write each kind's CPU seconds per poll (every 0.5 s) to this CSV: time, kind, CPU seconds",
    )
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the benchmark and its arguments")
    args = parser.parse_args()
    command = [a for a in args.command if a != "--"] or ["bench/throughput.py"]
    bench = subprocess.Popen([sys.executable, *command])
    last: dict[tuple[str, int], float] = {}
    #: CPU already spent by what was running before the benchmark (PostgreSQL's own processes).
    before: dict[tuple[str, int], float] = {}
    first_poll = True
    kinds: dict[tuple[str, int], str] = {}
    spies: list[subprocess.Popen[bytes]] = []
    if args.py_spy:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    timeline = args.timeline.open("w") if args.timeline else None
    started = time.monotonic()
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        while bench.poll() is None:
            processes = balsong_processes(bench.pid)
            sessions = postgres_sessions(conn)
            for group, found in (
                ("process", processes),
                ("postgres", sessions),
                ("postgres", postgres_background()),
            ):
                for pid, kind in found.items():
                    seconds = cpu_seconds(pid)
                    if seconds is None:
                        continue
                    if (
                        ("process", pid) not in kinds
                        and group == "process"
                        and args.py_spy
                        and kind != "benchmark (client)"
                    ):
                        spies.append(_spy(pid, args.py_spy / f"{kind.replace(' ', '-')}-{pid}.txt"))
                    if first_poll:
                        before[group, pid] = seconds
                    kinds[group, pid] = kind
                    last[group, pid] = seconds
            first_poll = False
            if timeline:
                _write_timeline(timeline, time.monotonic() - started, last, before, kinds)
            time.sleep(POLL_SECONDS)
    for spy in spies:
        spy.wait(timeout=30)
    totals: dict[str, float] = defaultdict(float)
    for key, seconds in last.items():
        group, _ = key
        label = kinds[key] if group == "process" else f"{kinds[key]} (PostgreSQL)"
        totals[label] += seconds - before.get(key, 0.0)
    whole = sum(totals.values()) or 1.0
    print(f"\nCPU seconds by process while the benchmark ran ({whole:.1f} s in all):")
    for label, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {label:<45} {seconds:8.1f} s  {100 * seconds / whole:5.1f} %")
    return bench.returncode or 0


def _write_timeline(
    out: Any,
    elapsed: float,
    last: dict[tuple[str, int], float],
    before: dict[tuple[str, int], float],
    kinds: dict[tuple[str, int], str],
) -> None:
    """One CSV row per kind: seconds since the start, the kind, its CPU seconds so far."""
    so_far: dict[str, float] = defaultdict(float)
    for key, seconds in last.items():
        label = kinds[key] if key[0] == "process" else f"{kinds[key]} (PostgreSQL)"
        so_far[label] += seconds - before.get(key, 0.0)
    for label, seconds in sorted(so_far.items()):
        out.write(f"{elapsed:.2f},{label},{seconds:.2f}\n")
    out.flush()


def _spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy on ``pid`` until it exits, as collapsed stacks."""
    py_spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "100",
            "--format",
            "raw",
            # Only the thread holding the GIL: a thread waiting for the GIL (or a socket) is
            # not counted, so a process's samples are its Python CPU, split by where it ran.
            "--gil",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    sys.exit(main())
