"""The API alone, as real processes on 127.0.0.1, for benchmarks of intake.

No worker consumes the plans the API publishes (they wait in the bench's own vhost), so what is
measured is intake and nothing else competing for the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

from cli.processes import ProcessGroup, api_argv, wait_healthy
from engine.accounts.billing import MAX_AMOUNT, top_up
from engine.accounts.tenants import add_sender, create_api_key, create_tenant
from engine.config import Settings
from tests.support.services import settings_env
from tests.support.simulator import free_port
from tests.support.stack import SENDER


@dataclass
class RunningApi:
    settings: Settings
    group: ProcessGroup
    port: int

    def worker_pids(self) -> list[int]:
        """The uvicorn processes serving requests: the master's children, or the master alone."""
        master = self.group.procs["api"].pid
        found: list[int] = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == master:
                found.append(int(entry))
        # uvicorn --workers N>1 also starts a multiprocessing resource tracker: not a server.
        servers = [pid for pid in found if b"resource_tracker" not in _cmdline(pid)]
        return sorted(servers) or [master]

    def new_tenant(self, name: str) -> str:
        """A tenant with the bench sender and plenty of points; its API key."""
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn, conn.transaction():
            tenant_id = create_tenant(conn, name)
            add_sender(conn, tenant_id, SENDER)
            top_up(conn, tenant_id, MAX_AMOUNT, memo="bench tenant")  # the most one top-up may add
            return create_api_key(conn, tenant_id, ("send", "read"))


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@contextmanager
def running_api(settings: Settings, log_dir: Path, workers: int = 1) -> Iterator[RunningApi]:
    port = free_port()
    settings = replace(settings, api_url=f"http://127.0.0.1:{port}", metrics_dir=str(log_dir / "metrics"))
    env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
    group = ProcessGroup(log_dir=log_dir, env=env)
    try:
        group.start("api", api_argv("127.0.0.1", port, workers=workers))
        wait_healthy(f"{settings.api_url}/healthz", group)
        yield RunningApi(settings, group, port)
    finally:
        group.stop_all()


def peak_rss_reset(pid: int) -> None:
    """Start a new peak-RSS measurement for ``pid`` (Linux: clear_refs 5 resets VmHWM)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS since the last reset) of ``pid``, in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]
