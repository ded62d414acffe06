"""Waiting for a job submitted to a running stack to finish."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.stack import Stack

FINISHED = ("completed", "partially_failed", "failed")


def wait_finished(stack: Stack, client: httpx.Client, job_id: int, timeout: float = 120.0) -> dict[str, Any]:
    """The job once its status is final; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = stack.job(client, job_id)
        if job["status"] in FINISHED:
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} not finished after {timeout}s: {stack.job(client, job_id)}")
