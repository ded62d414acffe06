"""Retention: results are kept ``retention_days`` after their job's creation, then dropped by
whole months.

Recipients are partitioned by the (UTC) month of their job's creation (``recipients_YYYY_MM``,
migration 0001). Once a whole month is older than the retention period, a scheduler duty
deletes that month's jobs (their batches go with them, ON DELETE CASCADE; a later resend's
``resent_from`` becomes NULL) and then drops the month's partition. Deleting row by row would
cost a full vacuum's worth of dead tuples for every recipient of the month; dropping the
partition costs nothing.

Why DETACH ... CONCURRENTLY, then DROP, and not a plain DROP TABLE of the partition: dropping
(or plainly detaching) a partition takes an ACCESS EXCLUSIVE lock on the parent ``recipients``.
While it waits for a long reader of any partition (an export, a recount) to finish, every
intake COPY and every flusher UPDATE queues behind it: intake would stall. DETACH PARTITION
CONCURRENTLY takes only SHARE UPDATE EXCLUSIVE on the parent, which inserts, updates and reads
never conflict with; once detached, the partition is a table of its own that nobody reaches
through ``recipients`` any more, and dropping it locks only itself. DETACH CONCURRENTLY cannot
run inside a transaction block, so it runs on an autocommit connection with no transaction
open (the pool's connections are autocommit). It runs in two transactions; if it is
interrupted between them, the partition is left "pending detach", and the next run completes
it with DETACH ... FINALIZE. A table detached but not yet dropped (a crash in between) is
dropped by the next run. Intake never writes to an old month: it writes to the month of now.
Creating a partition (intake's first job of a month) does conflict with a detach in progress,
so retention detaches only once this month's and next month's partitions exist (made ahead by
the scheduler's partitions duty); it never creates one itself, since that DDL would queue
behind long readers and stall intake behind it.

Jobs go first, partitions second: a crash in between leaves, for a day, recipients of no job
(invisible), never a job without its recipients.

Send statistics (``send_stats_hourly``, ``send_stats_reasons``: counts per tenant, KST hour or
day, channel and reason code) hold no personal data and are deliberately kept longer than the
results they were counted from, ``stats_retention_days`` (about three years), so that a month can
be compared with the same month of the years before; `purge_old_stats` deletes what is older.
They reference no job, so deleting a job or dropping a month's partition leaves them as they are.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from psycopg import Connection, sql
from psycopg.errors import LockNotAvailable

from engine.clock import KST

log = logging.getLogger(__name__)

#: Jobs deleted per transaction (each takes its batches with it).
DELETE_PAGE = 1000
#: How long the detach may wait for readers of the old month (a long export) before giving up
#: until the next run (which finishes an interrupted detach). Its waits never hold up intake:
#: SHARE UPDATE EXCLUSIVE conflicts with neither the ROW EXCLUSIVE of inserts and updates nor
#: the ACCESS SHARE of reads, so nothing queues behind it.
LOCK_TIMEOUT = "10min"

_PARTITION = re.compile(r"^recipients_(\d{4})_(\d{2})$")


@dataclass(slots=True)
class Purge:
    #: Months whose recipients partition was dropped.
    months: list[date] = field(default_factory=list)
    #: Ids of the jobs deleted.
    job_ids: list[int] = field(default_factory=list)


def first_kept_month(now: datetime, retention_days: int) -> date:
    """The oldest month some of whose results are still within retention: every month before
    it is wholly older than ``retention_days``."""
    edge = (now - timedelta(days=retention_days)).date()
    return edge.replace(day=1)


def purge_expired(conn: Connection, now: datetime, retention_days: int) -> Purge:
    """Delete the jobs and drop the recipients partitions of every month wholly past retention.
    ``conn`` must be in autocommit mode, with no transaction open."""
    keep_from = first_kept_month(now, retention_days)
    purge = Purge(job_ids=delete_jobs_before(conn, keep_from))
    partitions = recipient_partitions(conn)
    this_month = now.date().replace(day=1)
    ahead = {this_month, (this_month + timedelta(days=32)).replace(day=1)}
    if not ahead <= {month for month, state in partitions if state == "attached"}:
        # Creating a partition conflicts with a detach in progress: no detach until this
        # month's and next month's exist (the scheduler's partitions duty makes them), so that
        # intake never needs to create one while a detach waits for old readers.
        return purge
    for month, state in partitions:
        if month >= keep_from:
            continue
        try:
            drop_partition(conn, month, state)
        except LockNotAvailable:
            # Readers of the month held on past the lock timeout; an interrupted detach is
            # finished by the next run.
            log.warning("retention: could not drop %s yet; trying again next run", f"{month:%Y-%m}")
            break
        purge.months.append(month)
    return purge


def purge_old_stats(conn: Connection, now: datetime, stats_retention_days: int) -> int:
    """Delete the send statistics of KST days wholly older than ``stats_retention_days``; the
    number of rows deleted. Small: each run deletes the hours that aged out since the last."""
    first_kept = (now.astimezone(KST) - timedelta(days=stats_retention_days)).date()
    with conn.transaction():
        hourly = conn.execute("DELETE FROM send_stats_hourly WHERE kst_hour < %s", (first_kept,)).rowcount
        reasons = conn.execute("DELETE FROM send_stats_reasons WHERE kst_day < %s", (first_kept,)).rowcount
    return hourly + reasons


def delete_jobs_before(conn: Connection, keep_from: date) -> list[int]:
    """Delete, a page per transaction, the jobs created before ``keep_from`` (UTC)."""
    deleted: list[int] = []
    while True:
        rows = conn.execute(
            """
            DELETE FROM jobs WHERE id IN (
                SELECT id FROM jobs WHERE created_at < %s::timestamp AT TIME ZONE 'UTC' ORDER BY id LIMIT %s)
            RETURNING id
            """,
            (keep_from, DELETE_PAGE),
        ).fetchall()
        deleted.extend(int(r[0]) for r in rows)
        if len(rows) < DELETE_PAGE:
            return deleted


def recipient_partitions(conn: Connection) -> list[tuple[date, str]]:
    """Every monthly recipients table, oldest first, with its state: ``attached``,
    ``pending`` (a concurrent detach was interrupted) or ``detached`` (not dropped yet)."""
    rows = conn.execute(
        """
        SELECT c.relname,
               CASE WHEN i.inhrelid IS NULL THEN 'detached'
                    WHEN i.inhdetachpending THEN 'pending' ELSE 'attached' END
        FROM pg_class c
        LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'recipients'::regclass
        WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
          AND c.relname ~ '^recipients_[0-9]{4}_[0-9]{2}$'
        """
    ).fetchall()
    found = []
    for name, state in rows:
        match = _PARTITION.match(name)
        if match:
            found.append((date(int(match[1]), int(match[2]), 1), state))
    return sorted(found)


def drop_partition(conn: Connection, month: date, state: str) -> None:
    """Detach (concurrently) and drop one month's recipients table; see the module docstring."""
    table = sql.Identifier(f"recipients_{month:%Y_%m}")
    conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
    try:
        if state == "pending":
            conn.execute(sql.SQL("ALTER TABLE recipients DETACH PARTITION {} FINALIZE").format(table))
        elif state == "attached":
            conn.execute(sql.SQL("ALTER TABLE recipients DETACH PARTITION {} CONCURRENTLY").format(table))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    finally:
        conn.execute("RESET lock_timeout")


def deletion_at(created_at: datetime, retention_days: int) -> datetime:
    """When the results of a job created at ``created_at`` are deleted: `purge_expired` drops a
    whole (UTC) month once ``retention_days`` have passed since that month's end, so a job is
    kept at least ``retention_days`` and at most a month longer. The retention duty runs every
    ``retention_interval_seconds``, so the deletion happens within that much after this instant."""
    start = created_at.astimezone(UTC)
    next_month = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
    month_end = datetime(next_month.year, next_month.month, 1, tzinfo=UTC)
    return month_end + timedelta(days=retention_days)
