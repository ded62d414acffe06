"""A job's progress bar and results summary, drawn from the API's job view.

The bar keeps apart what the carriers have *taken* (submitted, or refused at once) and what is
*finished* (a final result: delivered, failed, expired, cancelled, unknown). A job whose every
recipient has been handed over waits for the carriers' delivery reports, which may come seconds
or hours later; the bar says so instead of sitting still at a small percentage::

    [██▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓]  submitted 100.0%  finished   0.2%  job 7 sending ...

``█`` finished, ``▓`` submitted and waiting for its report, ``░`` not handed over yet.

On a terminal the bar is redrawn in place (``\\r``); otherwise (a pipe, a log file, CI) it is a
plain line at most every :data:`PLAIN_INTERVAL_SECONDS`, and whenever the job's status changes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import httpx

from engine.lifecycle.statuses import FINISHED_JOB_STATUSES, JobStatus

#: Job statuses at which following stops: finished, or paused (nothing moves until resumed).
STOP_STATUSES = frozenset({*FINISHED_JOB_STATUSES, JobStatus.PAUSED})
BAR_WIDTH = 40
#: The terminal's "erase to the end of the line" (ECMA-48 EL).
CLEAR_TO_END = "\x1b[K"
#: Seconds between two plain progress lines when the output is not a terminal.
PLAIN_INTERVAL_SECONDS = 5.0


def finished_count(counts: dict[str, Any]) -> int:
    """Recipients with a final result (the job view's counts)."""
    return sum(counts.get(name, 0) for name in ("delivered", "failed", "expired", "cancelled", "unknown"))


def elapsed_seconds(job: dict[str, Any], now: datetime | None = None) -> float:
    """Seconds from the job's creation to its completion, or to ``now`` while it runs."""
    created = datetime.fromisoformat(job["created_at"])
    end = datetime.fromisoformat(job["completed_at"]) if job.get("completed_at") else now or datetime.now(UTC)
    return max((end - created).total_seconds(), 0.0)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def render_bar(job: dict[str, Any], elapsed: float) -> str:
    """One progress line (no line end, no ``\\r``)."""
    counts = job["counts"]
    total = max(counts["total"], 1)
    finished = finished_count(counts)
    taken = max(counts["total"] - counts["queued"], finished)
    done_cells = int(finished / total * BAR_WIDTH)
    taken_cells = max(int(taken / total * BAR_WIDTH), done_cells)
    bar = "█" * done_cells + "▓" * (taken_cells - done_cells) + "░" * (BAR_WIDTH - taken_cells)
    line = (
        f"[{bar}]  submitted {taken / total:6.1%}  finished {finished / total:6.1%}  "
        f"job {job['id']} {job['status']:<16} "
        f"delivered {counts['delivered']:,}  failed {counts['failed']:,}  "
        f"in flight {counts['in_flight']:,}  queued {counts['queued']:,}  {_duration(elapsed)}"
    )
    if job["status"] == JobStatus.PAUSED:
        line += f"  paused: resume with `balsong resume {job['id']}`"
    elif counts["queued"] == 0 and counts["in_flight"] > 0:
        line += f"  waiting for delivery reports ({counts['in_flight']:,} in flight)"
    return line


def summary(job: dict[str, Any], elapsed: float) -> str:
    counts = job["counts"]
    lines = [
        "",
        f"Job {job['id']}: {job['status']}  ({_duration(elapsed)})",
        f"  created     {job['created_at']}",
        f"  first sent  {job['sent_at']}",
        f"  completed   {job['completed_at']}",
        f"  recipients  {counts['total']:,}  (SMS {counts['by_channel']['sms']:,}, "
        f"LMS {counts['by_channel']['lms']:,}, KakaoTalk {counts['by_channel']['kakao']:,}, "
        f"invalid {counts['by_channel']['invalid']:,}, duplicates removed {counts['duplicates_removed']:,})",
        f"  sent        {counts['sent']:,}",
        f"  delivered   {counts['delivered']:,}",
        f"  failed      {counts['failed']:,}",
        f"  unknown     {counts['unknown']:,}  (no delivery report by the deadline)",
        f"  cancelled   {counts['cancelled']:,}",
        f"  in flight   {counts['in_flight']:,}",
    ]
    if job["failures"]:
        lines.append("  failures by reason:")
        for failure in job["failures"]:
            lines.append(f"    {failure['count']:>8,}  {failure['reason_code']:<24} {failure['reason']}")
    if job["status"] == JobStatus.PAUSED:
        lines.append(
            f"  paused ({(job.get('paused') or {}).get('reason')}): resume with `balsong resume {job['id']}`"
        )
    return "\n".join(lines)


class ProgressLine:
    """Writes progress lines to ``out``: redrawn in place on a terminal, plain lines (at most one
    per ``interval`` seconds, and on every change of ``key``) otherwise."""

    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool | None = None,
        interval: float = PLAIN_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.interval = interval
        self.clock = clock
        self._last_at: float | None = None
        self._last_key: object = None
        self._drawn = False

    def show(self, line: str, key: object = None, *, force: bool = False) -> None:
        """Show ``line``; ``key`` is what makes a line worth printing at once (the job's status)."""
        if self.tty:
            # Back to the line's start, the new line, and the rest of a longer old one erased.
            self.out.write("\r" + line + CLEAR_TO_END)
            self._drawn = True
        else:
            now = self.clock()
            due = self._last_at is None or now - self._last_at >= self.interval
            if not (force or due or key != self._last_key):
                return
            self.out.write(line + "\n")
            self._last_at = now
        self._last_key = key
        self.out.flush()

    def close(self) -> None:
        """End the line being redrawn (on a terminal)."""
        if self.tty and self._drawn:
            self.out.write("\n")
            self.out.flush()
        self._drawn = False


def follow(
    client: httpx.Client,
    job_id: int,
    *,
    out: TextIO = sys.stdout,
    interval: float = 0.5,
    timeout: float = 3600.0,
    tty: bool | None = None,
) -> dict[str, Any]:
    """Show the progress of a job until it finishes or is paused, or ``timeout`` seconds pass (0:
    look once); return the last job view. ``out`` gets a bar on a terminal, plain lines otherwise."""
    started = time.monotonic()
    progress = ProgressLine(out, tty=tty)
    try:
        while True:
            response = client.get(f"/v1/jobs/{job_id}")
            response.raise_for_status()
            job: dict[str, Any] = response.json()
            stop = job["status"] in STOP_STATUSES or time.monotonic() - started >= timeout
            progress.show(render_bar(job, elapsed_seconds(job)), job["status"], force=stop)
            if stop:
                return job
            time.sleep(interval)
    finally:
        progress.close()
