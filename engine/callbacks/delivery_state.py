"""What became of a job's callback events (the API and the console show it), and replaying them.

A job's events are ``delivered`` (a 2xx came back), ``pending`` (waiting, or being retried:
``last_error`` says why the last try failed) or ``failed`` (given up after the retry window, or
the endpoint answered 410 Gone). Replaying a job queues every one of its events again, under the
same ``event_id`` (a receiver that dropped them as duplicates must let a replay through), and
lifts its endpoint's back-off and a 410's disabling.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection

from engine.errors import JobStateConflict, NotFound


def job_callbacks(conn: Connection[Any], tenant_id: int, job_id: int) -> dict[str, Any]:
    """The job's callback URL and its events by state; NotFound unless it is the tenant's."""
    job = conn.execute(
        "SELECT callback_url FROM jobs WHERE id = %s AND tenant_id = %s", (job_id, tenant_id)
    ).fetchone()
    if job is None:
        raise NotFound(f"job {job_id} not found")
    url = job[0]
    counts = {"delivered": 0, "pending": 0, "failed": 0}
    for state, events in conn.execute(
        "SELECT state, sum(event_count) FROM callback_events WHERE job_id = %s GROUP BY state", (job_id,)
    ).fetchall():
        counts[state] = int(events)
    last = conn.execute(
        """
        SELECT last_error FROM callback_events
        WHERE job_id = %s AND state <> 'delivered' AND last_error IS NOT NULL
        ORDER BY id DESC LIMIT 1
        """,
        (job_id,),
    ).fetchone()
    endpoint = None
    if url is not None:
        endpoint = conn.execute(
            """
            SELECT failures, next_attempt_at, last_attempt_at, last_success_at, last_error, disabled_at
            FROM callback_endpoints WHERE tenant_id = %s AND url = %s
            """,
            (tenant_id, url),
        ).fetchone()
    failures, next_at, last_at, success_at, endpoint_error, disabled_at = endpoint or (
        0,
        None,
        None,
        None,
        None,
        None,
    )
    return {
        "url": url,
        "events": counts,
        "last_error": last[0] if last else None,
        "endpoint": {
            "failures_in_a_row": failures,
            "next_attempt_at": next_at,
            "last_attempt_at": last_at,
            "last_success_at": success_at,
            "last_error": endpoint_error,
            "disabled_at": disabled_at,
        },
    }


def replay_job(conn: Connection[Any], tenant_id: int, job_id: int, now: datetime) -> int:
    """Queue every event of the job again; how many. NotFound unless it is the tenant's;
    JobStateConflict (``no_callback_url``) if it has no callback URL."""
    with conn.transaction():
        job = conn.execute(
            "SELECT callback_url FROM jobs WHERE id = %s AND tenant_id = %s FOR UPDATE", (job_id, tenant_id)
        ).fetchone()
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if job[0] is None:
            raise JobStateConflict("no_callback_url", f"job {job_id} has no callback URL: it made no events")
        row = conn.execute(
            """
            WITH again AS (
                UPDATE callback_events
                SET state = 'pending', tries = 0, last_error = NULL, finished_at = NULL, created_at = %s
                WHERE job_id = %s RETURNING event_count)
            SELECT coalesce(sum(event_count), 0) FROM again
            """,
            (now, job_id),
        ).fetchone()
        enable_endpoint(conn, tenant_id, job[0])
    return int(row[0]) if row else 0


def enable_endpoint(conn: Connection[Any], tenant_id: int, url: str) -> None:
    """Lift the endpoint's back-off and a 410's disabling: it is tried at once."""
    conn.execute(
        "UPDATE callback_endpoints SET disabled_at = NULL, failures = 0, next_attempt_at = NULL"
        " WHERE tenant_id = %s AND url = %s",
        (tenant_id, url),
    )
