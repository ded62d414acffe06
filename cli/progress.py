"""A job's progress bar and results summary, drawn from the API's job view."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import httpx

FINISHED = ("completed", "partially_failed", "failed", "cancelled")
BAR_WIDTH = 40


def render_bar(job: dict[str, Any], elapsed: float) -> str:
    counts = job["counts"]
    total = max(counts["total"], 1)
    finished = counts["delivered"] + counts["failed"]
    done_ratio = finished / total
    filled = int(done_ratio * BAR_WIDTH)
    bar = "█" * filled + "░" * (BAR_WIDTH - filled)
    return (
        f"\r[{bar}] {done_ratio:6.1%}  job {job['id']} {job['status']:<16} "
        f"sent {counts['sent']:,}  delivered {counts['delivered']:,}  failed {counts['failed']:,}  "
        f"in flight {counts['in_flight']:,}  queued {counts['queued']:,}  {elapsed:5.1f}s "
    )


def summary(job: dict[str, Any], elapsed: float) -> str:
    counts = job["counts"]
    lines = [
        "",
        f"Job {job['id']}: {job['status']}  ({elapsed:.1f}s)",
        f"  created     {job['created_at']}",
        f"  first sent  {job['sent_at']}",
        f"  completed   {job['completed_at']}",
        f"  recipients  {counts['total']:,}  (SMS {counts['by_channel']['sms']:,}, "
        f"LMS {counts['by_channel']['lms']:,}, invalid {counts['by_channel']['invalid']:,}, "
        f"duplicates removed {counts['duplicates_removed']:,})",
        f"  sent        {counts['sent']:,}",
        f"  delivered   {counts['delivered']:,}",
        f"  failed      {counts['failed']:,}",
        f"  in flight   {counts['in_flight']:,}",
    ]
    if job["failures"]:
        lines.append("  failures by reason:")
        for failure in job["failures"]:
            lines.append(f"    {failure['count']:>8,}  {failure['reason_code']:<24} {failure['reason']}")
    return "\n".join(lines)


def follow(
    client: httpx.Client,
    job_id: int,
    *,
    out: TextIO = sys.stdout,
    interval: float = 0.5,
    timeout: float = 3600.0,
) -> dict[str, Any]:
    """Redraw the progress bar until the job is finished; return the final job view."""
    started = time.monotonic()
    while True:
        response = client.get(f"/v1/jobs/{job_id}")
        response.raise_for_status()
        job = response.json()
        elapsed = time.monotonic() - started
        out.write(render_bar(job, elapsed))
        out.flush()
        if job["status"] in FINISHED:
            out.write("\n")
            return job
        if elapsed > timeout:
            out.write("\n")
            raise TimeoutError(f"job {job_id} not finished after {timeout:.0f}s")
        time.sleep(interval)
