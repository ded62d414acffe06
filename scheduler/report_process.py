"""The report polls in a process of their own, beside the scheduler's other duties.

A report poll spends its time in Python: parsing the carrier's pages, checking each report and
queuing it on the result stream. In the scheduler's one process it took turns with the flusher
for the interpreter, so the reports of a burst were read, then applied, on one core while the
other stood idle (bench/cpu_by_process.py --timeline). In a child process the poll reads the
next pages while the flusher applies the last ones; the result stream between them stays the one
way reports reach PostgreSQL.

`balsong scheduler` starts the child (``balsong scheduler --duties reports``) and runs the other
duties itself. It starts the child again should it exit, and stops it when it stops. The child
dies with its parent, even one killed with SIGKILL (Linux's parent-death signal; a parent gone
before the child asked for it is seen at once). Its duties hold their leases as before, so
another scheduler replica never polls at the same time.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

from scheduler.runner import Duty

log = logging.getLogger(__name__)

#: The duties the child runs.
REPORT_POLLS = frozenset({"poll_reports", "poll_kakao_reports"})
#: Seconds between the child's exit and its next start (a child failing at start is not spun).
RESTART_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def select(duties: Sequence[Duty], group: str) -> list[Duty]:
    """The duties of ``group``: ``reports`` (the child's), ``others`` (the parent's), ``all``."""
    if group == "all":
        return list(duties)
    return [d for d in duties if (d.name in REPORT_POLLS) == (group == "reports")]


def child_argv(parent: int) -> list[str]:
    """The child's command line; ``parent``: its parent's pid, to see a parent already gone."""
    return [sys.executable, "-m", "cli.main", "scheduler", "--duties", "reports", "--parent", str(parent)]


class ReportProcess:
    """Runs the child while the parent runs; call `start`, then `stop` on the way out."""

    def __init__(self) -> None:
        self.argv = child_argv(os.getpid())
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="report-process", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _supervise(self) -> None:
        while not self._stop.is_set():
            # Output goes where the parent's goes (the same log stream, the same container).
            self._proc = subprocess.Popen(self.argv)
            log.info("report poll process started", extra={"pid": self._proc.pid})
            while self._proc.poll() is None:
                if self._stop.wait(0.5):
                    return
            log.error(
                "report poll process exited; starting it again",
                extra={"pid": self._proc.pid, "exit_code": self._proc.returncode},
            )
            self._stop.wait(RESTART_SECONDS)


def die_with_parent(parent: int | None) -> None:
    """In the child: SIGTERM when the parent dies (it stops like any scheduler, releasing its
    leases); exit at once if ``parent`` is already gone."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent is not None and os.getppid() != parent:
        sys.exit(0)
