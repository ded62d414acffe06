"""Starting and stopping balsong's processes (demo, tests, benchmarks): the Procfile, in Python."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def api_argv(host: str, port: int, workers: int = 1) -> list[str]:
    """`balsong api`: prepares the API's metrics directory and logging, then runs uvicorn."""
    return [
        sys.executable,
        "-m",
        "cli.main",
        "api",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def worker_argv(processes: int, threads: int) -> list[str]:
    """`balsong worker`: prepares the workers' metrics directory, then runs Dramatiq's CLI."""
    return [
        sys.executable,
        "-m",
        "cli.main",
        "worker",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]


def dramatiq_args(
    processes: int, threads: int, *, queues: Sequence[str] | None = None, watch: str | None = None
) -> list[str]:
    """Dramatiq's CLI arguments: each worker process boots through `actors.worker.boot`, which
    configures its logs itself (hence Dramatiq's own text logging is skipped).

    Parameters:
      queues: consume only these queues (e.g. the transactional lane); None: every queue.
      watch: a directory whose Python sources, when changed, restart the workers (development).
    """
    argv = ["actors.worker:boot", "--processes", str(processes), "--threads", str(threads), "--skip-logging"]
    if queues:
        argv += ["--queues", *queues]
    if watch:
        argv += ["--watch", watch]
    return argv


def scheduler_argv() -> list[str]:
    return [sys.executable, "-m", "cli.main", "scheduler"]


def callbacks_argv() -> list[str]:
    """`balsong callbacks`: the status callback dispatcher."""
    return [sys.executable, "-m", "cli.main", "callbacks"]


def simulator_argv(host: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "carriers.simulator", "--host", host, "--port", str(port), *extra]


@dataclass
class ProcessGroup:
    """Child processes with their logs in ``log_dir``; stopped together, children first killed
    politely (SIGTERM), then for good."""

    log_dir: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=dict(self.env), start_new_session=True
        )
        log.close()
        self.procs[name] = proc
        return proc

    def stop(self, name: str, timeout: float = 15.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"process {name} exited with {proc.returncode}; see {self.log_dir / (name + '.log')}"
                )


def wait_healthy(url: str, group: ProcessGroup | None = None, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if group is not None:
            group.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not healthy after {timeout:.0f}s")
        time.sleep(0.2)
