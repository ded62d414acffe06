"""`balsong scheduler` polls reports in a child process (`scheduler.report_process`): the child
holds the polls' leases, is started again when it dies, and never outlives its parent."""

from __future__ import annotations

import os
import signal
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from redis import Redis

from cli.processes import ProcessGroup, scheduler_argv
from engine.db import upgrade
from engine.keys import Keys
from tests.conftest import TEST_OVERRIDES
from tests.support.services import isolated_settings, settings_env
from tests.support.simulator import free_port
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and running(int(entry.name)):
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """``pid`` exists and is not a zombie (an orphan's zombie waits for a reaper)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_the_report_polls_run_in_a_child_restarted_when_it_dies_and_gone_with_its_parent(
    tmp_path: Path,
) -> None:
    # Given a scheduler of its own (its own database, key prefix and vhost: the session's stack
    # runs another)
    with isolated_settings(**TEST_OVERRIDES) as isolated:
        upgrade(isolated.database_url)
        settings = replace(
            isolated, metrics_dir=str(tmp_path / "metrics"), scheduler_metrics_port=free_port()
        )
        group = ProcessGroup(log_dir=tmp_path, env={**os.environ, **settings_env(settings)})
        redis = Redis.from_url(settings.redis_url)
        keys = Keys(settings.redis_prefix)

        def holder(duty: str) -> str | None:
            raw = redis.get(keys.lease(duty))
            return raw.decode() if raw else None

        try:
            parent = group.start("scheduler", scheduler_argv())
            child = wait_until(lambda: children(parent.pid), timeout=30, what="a report process")[0]

            # Then the child holds the report polls' lease, the parent the flusher's
            host = socket.gethostname()
            wait_until(lambda: holder("poll_reports") == f"{host}:{child}", timeout=30, what="poll lease")
            wait_until(lambda: holder("flush_results") == f"{host}:{parent.pid}", what="flusher lease")

            # When the child is killed, the parent starts another
            os.kill(child, signal.SIGKILL)
            again = wait_until(
                lambda: [c for c in children(parent.pid) if c != child], timeout=30, what="a new child"
            )[0]
            # (which takes the polls' lease once the killed child's has lapsed)
            wait_until(lambda: holder("poll_reports") == f"{host}:{again}", timeout=30, what="poll lease")

            # When the parent is killed outright, its child goes too
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait()
            wait_until(lambda: not running(again), timeout=10, what="the child's exit")
        finally:
            group.stop_all()
            redis.close()
