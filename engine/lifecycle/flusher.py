"""The result flusher: drains the Redis result stream into PostgreSQL in bulk.

Each pass reads up to ``max_entries`` stream entries (one per batch or report page), applies
them in one transaction (pipelined UPDATEs, each bounded by the batch's seq range so the planner
uses the primary key), commits, and only then acknowledges and deletes them. A flusher that dies
mid-pass leaves its entries pending; the next pass claims pending entries that have been idle
too long, so nothing is lost. Re-applying an entry is harmless: rows only move forward
(``queued`` to ``submitted`` to a final state), and report counters move only for rows that
actually changed.

Poison never blocks the stream. Each entry is checked at the door (`engine.lifecycle.flush_admission`);
one that fails, or one outcome or report of it, is set aside (``dead_entries``) and the rest
applied. Should the pass still fail on its data (PostgreSQL refusing a value: ``DataError``), it
is applied again entry by entry, each in a savepoint, and an entry that fails alone is applied
outcome by outcome; only what fails alone then is set aside. Either way every entry read is
acknowledged once the pass commits, so one bad entry cannot hold back other tenants' results.
An error that may pass (a lost connection) is raised as before: the pass is tried again.
A report names the carrier that sent it (``c``); it changes only recipients of that carrier's
channels.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import psycopg
from psycopg import Connection
from psycopg_pool import ConnectionPool
from redis import Redis
from redis.exceptions import ResponseError

from engine.callbacks.outbox import events_from
from engine.clock import Clock
from engine.config import Settings
from engine.keys import Keys
from engine.lifecycle import dead_entries
from engine.lifecycle.completion import finish_completed_jobs
from engine.lifecycle.dead_entries import DeadEntry
from engine.lifecycle.fallback import FallbackResult, create_fallbacks
from engine.lifecycle.flush_admission import admit, split
from engine.lifecycle.pipeline_metrics import count_intake_failures, count_report_results
from engine.lifecycle.recipient_times import completed_at_sql
from engine.lifecycle.report_matching import channels_of
from engine.lifecycle.retries import RetryLedger, retry_cutoff, retry_due_at, schedule_retry
from engine.lifecycle.statuses import RecipientStatus
from engine.lifecycle.transitions import STATUSES_WITH_REASON, Standing, report_delta, standing
from metrics import FLUSHED_ROWS

log = logging.getLogger(__name__)

GROUP = "flusher"
#: How long a report found before its recipient's submission waits for it (`EarlyReport`).
EARLY_REPORT_PATIENCE_SECONDS = 120.0
#: Jobs whose facts the flusher keeps at once (a few hundred bytes each).
JOB_CACHE_SIZE = 10_000

#: Errors that say an entry's data cannot be applied, whatever the retries: PostgreSQL refusing
#: a value (DataError: NUL in text, a number out of range, a bad timestamp) and Python refusing to
#: build one. Anything else (a lost connection, a deadlock) may pass: the pass is tried again.
UNAPPLICABLE = (psycopg.DataError, ValueError, TypeError, OverflowError)

_APPLY_SUBMISSION = """
    UPDATE recipients AS r
    SET status = u.status,
        reason_code = u.code,
        reason_text = u.text,
        carrier_id = u.carrier_id,
        submitted_at = CASE WHEN u.status IN ('submitted', 'delivered') THEN %(at)s END,
        first_attempt_at = coalesce(r.first_attempt_at, %(at)s),
        completed_at = CASE WHEN u.status IN ('delivered', 'failed', 'expired', 'cancelled') THEN %(at)s END
    FROM (
        SELECT (o ->> 0)::int AS seq, o ->> 1 AS status, o ->> 2 AS code, o ->> 3 AS text,
               o ->> 4 AS carrier_id
        FROM jsonb_array_elements(%(outcomes)s::jsonb) AS o
    ) AS u
    WHERE r.job_id = %(job)s AND r.job_created_at = %(created_at)s
      AND r.seq BETWEEN %(low)s AND %(high)s AND r.seq = u.seq
      AND r.status = 'queued'
"""

# The same for a job with a callback URL: its events go to the outbox in the same statement.
_APPLY_SUBMISSION_WITH_EVENTS = f"""
    WITH changed AS (
        {_APPLY_SUBMISSION}
        RETURNING r.job_id, r.seq, r.attempt, r.status, r.reason_code, r.reason_text,
                  coalesce(r.completed_at, r.submitted_at, %(at)s) AS at
    )
    {events_from("changed")}
"""

# A job's reports as rows, from one JSON text (%(reports)s). A report item: [job, seq, status,
# code, text, result time (epoch s; 0 or null: unknown, the flush's time), attempt (missing: 0)].
_REPORT_ITEMS = """
    SELECT (o ->> 1)::int AS seq, o ->> 2 AS status, o ->> 3 AS code, o ->> 4 AS text,
           coalesce(to_timestamp(nullif((o ->> 5)::float8, 0)), %(flushed_at)s) AS result_at,
           coalesce((o ->> 6)::int, 0) AS attempt
    FROM jsonb_array_elements(%(reports)s::jsonb) AS o
"""

# A report of a passing failure ("phone off") past the channel's retry deadline.
_TOO_LATE = """(u.status = 'retry' AND r.first_attempt_at <= CASE r.channel WHEN 'kakao' THEN %(cutoff_kakao)s
                 WHEN 'lms' THEN %(cutoff_lms)s ELSE %(cutoff_sms)s END)"""

# Reports move rows only forward, and only for the attempt they are about (a late report of an
# earlier attempt changes nothing). A passing failure sends the recipient again (queued, next
# attempt) until its deadline; a Kakao failure with a fallback hands it to SMS/LMS.
_UPDATE_FROM_REPORTS = f"""
    UPDATE recipients AS r
    SET status = CASE WHEN {_TOO_LATE} THEN 'expired'
                      WHEN u.status = 'retry' THEN 'queued'
                      WHEN u.status = 'failed' AND r.channel = 'kakao' AND %(falls_back)s THEN 'fallback'
                      ELSE u.status END,
        attempt = CASE WHEN u.status = 'retry' AND NOT {_TOO_LATE} THEN r.attempt + 1 ELSE r.attempt END,
        submitted_at = CASE WHEN u.status = 'retry' AND NOT {_TOO_LATE} THEN NULL ELSE r.submitted_at END,
        reason_code = CASE WHEN {_TOO_LATE} THEN 'expired' ELSE u.code END,
        reason_text = CASE WHEN {_TOO_LATE} THEN 'not delivered before the retry deadline; last: ' || u.text
                           ELSE u.text END,
        completed_at = CASE WHEN u.status = 'retry' AND NOT {_TOO_LATE} THEN NULL
                            ELSE {completed_at_sql("u.result_at")} END
    FROM ({_REPORT_ITEMS}) AS u
    WHERE r.job_id = %(job)s AND r.job_created_at = %(created_at)s
      AND r.seq BETWEEN %(low)s AND %(high)s AND r.seq = u.seq AND r.attempt = u.attempt
      AND r.status = 'submitted'
      -- Only the carrier that sent a recipient may report on it (a forged or misrouted report
      -- about another channel's recipient changes nothing).
      AND (%(channels)s::text[] IS NULL OR r.channel = ANY (%(channels)s::text[]))
"""
# What a report changed, as `ReportChange` reads it.
_REPORT_CHANGE = """r.seq, r.status, r.reason_code, r.reason_text, r.channel, r.first_attempt_at, r.attempt,
                    extract(epoch FROM r.completed_at - r.submitted_at)::float8 AS latency"""
_APPLY_REPORTS = f"{_UPDATE_FROM_REPORTS} RETURNING {_REPORT_CHANGE}"
# The same for a job with a callback URL: its events go to the outbox in the same statement.
_APPLY_REPORTS_WITH_EVENTS = f"""
    WITH changed AS ({_UPDATE_FROM_REPORTS}
                     RETURNING {_REPORT_CHANGE}, r.job_id, coalesce(r.completed_at, %(now)s) AS at),
         events AS ({events_from("changed")})
    SELECT seq, status, reason_code, reason_text, channel, first_attempt_at, attempt, latency FROM changed
"""


# Of reports that changed nothing, those whose recipient is still queued at their attempt: the
# submission is not applied yet (`EarlyReport`).
_STILL_QUEUED = f"""
    SELECT r.seq
    FROM recipients r JOIN ({_REPORT_ITEMS}) AS u ON r.seq = u.seq AND r.attempt = u.attempt
    WHERE r.job_id = %(job)s AND r.job_created_at = %(created_at)s
      AND r.seq BETWEEN %(low)s AND %(high)s AND r.status = 'queued'
"""

# The seq ranges of the batches whose last outcome is in, for _RECORD_BATCH.
_BATCH_RANGES = """
    SELECT b.job_id, b.seq, b.first_seq, b.last_seq
    FROM batches b JOIN unnest(%s::bigint[], %s::int[]) AS d (job_id, seq) USING (job_id, seq)
"""

# A batch is recorded once its last outcome is in, unless some recipient of it is still queued
# without belonging to another open batch (a retry batch): the outcomes of an earlier slice were
# lost with Redis. It then stays 'sent', and the reconciliation asks the carrier about them.
# The range comes as constants (low, high): bounded only by the batch row's own columns, the
# planner hashed the whole job's recipients for every batch (~20 ms each, a third of the
# flusher's time on a 200,000-recipient job).
_RECORD_BATCH = """
    UPDATE batches b SET state = 'recorded', recorded_at = now()
    WHERE b.job_id = %(job)s AND b.seq = %(seq)s AND NOT EXISTS (
        SELECT 1 FROM recipients r
        WHERE r.job_id = %(job)s AND r.job_created_at = %(created_at)s
          AND r.seq BETWEEN %(low)s AND %(high)s AND (b.seqs IS NULL OR r.seq = ANY (b.seqs))
          AND r.status = 'queued'
          AND NOT EXISTS (
              SELECT 1 FROM batches o
              WHERE o.job_id = b.job_id AND o.seq <> b.seq AND o.state <> 'recorded'
                AND o.seqs IS NOT NULL AND r.seq = ANY (o.seqs)))
"""


#: What a fallback row counts for when it is made (it never counts in ``total``: its KakaoTalk
#: recipient keeps that place).
_FALLBACK_ROW_QUEUED = standing(Standing(RecipientStatus.QUEUED, fallback_row=True))
_FALLBACK_ROW_FAILED = standing(Standing(RecipientStatus.FAILED, fallback_row=True))


class JobFacts(NamedTuple):
    """What the flusher needs of a job, fixed once the job exists."""

    created_at: datetime
    #: Its Kakao failures fall back to SMS/LMS.
    falls_back: bool
    #: It has a callback URL: its changes write events to the outbox.
    has_callback: bool


class ReportChange(NamedTuple):
    """A recipient row a report changed, as it is now."""

    job_id: int
    seq: int
    status: str
    code: str | None
    text: str | None
    channel: str | None
    first_attempt_at: datetime | None
    attempt: int
    #: Seconds from submission to the final result (None when the recipient goes again).
    latency_seconds: float | None = None


class EarlyReport(NamedTuple):
    """A report that changed nothing because its recipient is still queued at the report's
    attempt: the carrier's result was read before the worker's record of the submission was
    applied (the worker was slow to record it, or died first). It goes back on the result stream
    to be applied after the submission, for up to `EARLY_REPORT_PATIENCE_SECONDS` from ``since``
    (a dead worker's batch is reconciled with the carrier well within that)."""

    carrier: str | None
    #: When it was first found early (epoch seconds).
    since: float
    item: list[Any]


@dataclass(slots=True)
class Applied:
    """What applying some entries did (merged only once their savepoint held)."""

    submitted_rows: int = 0
    report_changes: list[ReportChange] = field(default_factory=list)
    fallbacks: list[tuple[int, FallbackResult]] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)
    #: Reports that came before their recipient's submission was applied (`EarlyReport`).
    early_reports: list[EarlyReport] = field(default_factory=list)

    def add(self, other: Applied) -> None:
        self.submitted_rows += other.submitted_rows
        self.report_changes.extend(other.report_changes)
        self.early_reports.extend(other.early_reports)
        self.fallbacks.extend(other.fallbacks)
        self.touched |= other.touched


@dataclass(slots=True)
class FlushResult:
    entries: int = 0
    rows: int = 0
    jobs_finished: list[int] = field(default_factory=list)


class Flusher:
    def __init__(
        self,
        pool: ConnectionPool,
        redis: Redis,
        keys: Keys,
        consumer: str,
        *,
        settings: Settings,
        clock: Clock,
        claim_idle_ms: int = 30_000,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.clock = clock
        self.ledger = RetryLedger(redis, keys)
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        #: What the flusher needs of each job it meets (`JobFacts`): fixed once the job exists,
        #: so cached, the least recently used dropped past `JOB_CACHE_SIZE`.
        self._jobs: OrderedDict[int, JobFacts] = OrderedDict()
        self._group_ready = False
        self._own_pending_first = False
        #: Entries pending when this flusher started are taken at once (see `_read`).
        self._predecessor_pending = True

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.redis.xgroup_create(self.keys.results, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def flush_once(self, max_entries: int = 500, block_ms: int | None = None) -> FlushResult:
        """Apply up to ``max_entries`` stream entries to PostgreSQL; returns what was done."""
        try:
            return self._flush(max_entries, block_ms)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                # Redis restarted empty: the stream and its group are gone. Create them again;
                # the batches whose entries were lost are reconciled with the carrier.
                log.warning("result stream group missing (Redis lost its data); creating it again")
                self._group_ready = False
            raise
        except Exception:
            # The pass failed (PostgreSQL down?): its entries stay pending for this consumer;
            # the next pass takes them again at once rather than after claim_idle_ms.
            self._own_pending_first = True
            raise

    def _flush(self, max_entries: int, block_ms: int | None) -> FlushResult:
        self._ensure_group()
        entries = self._read(max_entries, block_ms)
        result = FlushResult(entries=len(entries))
        if not entries:
            return result
        ids = [entry_id for entry_id, _ in entries]
        payloads, dead = admit(entries)
        with self.pool.connection() as conn:
            try:
                with conn.transaction():
                    applied = self._apply(conn, payloads)
                    dead_entries.store(conn, dead)
            except UNAPPLICABLE as exc:
                # Some entry holds what PostgreSQL refuses although it passed the door: find it
                # by applying the entries one by one, so it alone is set aside.
                log.warning(
                    "flush pass failed on its data (%s); applying its entries one by one",
                    type(exc).__name__,
                    extra={"entries": len(payloads)},
                )
                applied = self._apply_one_by_one(conn, payloads, dead)
            report_changes, fallbacks = applied.report_changes, applied.fallbacks
            result.rows = applied.submitted_rows + len(report_changes)
            if report_changes:
                self._count_report_changes(report_changes)
            if fallbacks:
                self._count_fallbacks(fallbacks)
            if applied.touched:
                result.jobs_finished = finish_completed_jobs(
                    conn, self.redis, self.keys, sorted(applied.touched)
                )
                for job_id in result.jobs_finished:
                    log.info("job finished", extra={"job_id": job_id})
        if applied.early_reports:
            # Before the entries they came in are acknowledged: a crash between the two applies
            # them twice, which is harmless, and never loses them.
            self._requeue_early(applied.early_reports)
        # Entries set aside are committed to dead_entries: they leave the stream with the rest,
        # so nothing stays pending to block the next pass (and every other tenant's results).
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(self.keys.results, GROUP, *ids)
        pipe.xdel(self.keys.results, *ids)
        pipe.execute()
        dead_entries.count(dead)
        # Counted once committed; a pass redone after a crash finds its report rows already
        # changed (they are not returned again), so final results are never counted twice.
        if applied.submitted_rows:
            FLUSHED_ROWS.labels("submission").inc(applied.submitted_rows)
        if report_changes:
            FLUSHED_ROWS.labels("report").inc(len(report_changes))
            count_report_results(report_changes)
        return result

    def _apply(self, conn: Connection, payloads: list[dict[str, Any]]) -> Applied:
        """Apply ``payloads`` in the caller's transaction."""
        applied = Applied()
        submissions = [p for p in payloads if p["t"] == "send"]
        reports = [p for p in payloads if p["t"] == "report"]
        if submissions:
            applied.submitted_rows = self._apply_submissions(conn, submissions)
            applied.touched.update(p["job"] for p in submissions)
        if reports:
            applied.report_changes, applied.early_reports = self._apply_reports(conn, reports)
            applied.touched.update(change.job_id for change in applied.report_changes)
            self._schedule_report_retries(conn, applied.report_changes)
        # Kakao recipients handed to SMS/LMS get their fallback rows in this same
        # transaction: no moment exists where a job looks finished without them.
        applied.fallbacks = self._create_fallbacks(conn, submissions, applied.report_changes)
        return applied

    def _apply_one_by_one(
        self, conn: Connection, payloads: list[dict[str, Any]], dead: list[DeadEntry]
    ) -> Applied:
        """Each entry in a savepoint of one transaction; an entry that fails is applied outcome
        by outcome (report by report), and what still fails is added to ``dead`` and stored.
        An error that may pass (PostgreSQL gone) is raised: the pass is tried again."""
        total = Applied()
        with conn.transaction():
            for payload in payloads:
                try:
                    with conn.transaction():
                        total.add(self._apply(conn, [payload]))
                    continue
                except UNAPPLICABLE:
                    pass
                for part in split(payload):
                    try:
                        with conn.transaction():
                            total.add(self._apply(conn, [part]))
                    except UNAPPLICABLE as exc:
                        dead.append(
                            DeadEntry(
                                "flusher", "apply_failed", dead_entries.error_text(exc), part, part.get("c")
                            )
                        )
            dead_entries.store(conn, dead)
        return total

    def _read(self, max_entries: int, block_ms: int | None) -> list[tuple[bytes, dict[bytes, bytes]]]:
        if self._own_pending_first:
            # Entries this consumer read in a pass that failed ("0": our own pending ones).
            own: Any = self.redis.xreadgroup(
                GROUP, self.consumer, {self.keys.results: "0"}, count=max_entries
            )
            entries_own: list[Any] = [e for _s, stream_entries in own or [] for e in stream_entries if e[1]]
            if len(entries_own) < max_entries:
                self._own_pending_first = False
            if entries_own:
                return entries_own
        # Entries a dead flusher left pending come first, so a crash delays them only briefly.
        # Until it has found none, a new flusher takes them whatever their age: one flusher runs
        # at a time (the scheduler's lease), so what is pending when it starts was left by one
        # that is gone or lost its lease (applying an entry twice is harmless).
        claimed = self.redis.xautoclaim(
            self.keys.results,
            GROUP,
            self.consumer,
            min_idle_time=0 if self._predecessor_pending else self.claim_idle_ms,
            start_id="0-0",
            count=max_entries,
        )
        entries: list[Any] = [e for e in claimed[1] if e[1]]
        if len(entries) < max_entries:
            self._predecessor_pending = False
            fresh: Any = self.redis.xreadgroup(
                GROUP,
                self.consumer,
                {self.keys.results: ">"},
                count=max_entries - len(entries),
                block=block_ms,
            )
            for _stream, stream_entries in fresh or []:
                entries.extend(stream_entries)
        return entries

    def _apply_submissions(self, conn: Connection, submissions: list[dict[str, Any]]) -> int:
        params = []
        done_batches: list[dict[str, Any]] = []
        first_sent: dict[int, datetime] = {}
        for entry in submissions:
            outcomes = entry["o"]
            at = datetime.fromtimestamp(entry["at"], UTC)
            seqs = [o[0] for o in outcomes]
            params.append(
                {
                    "job": entry["job"],
                    "created_at": datetime.fromtimestamp(entry["ca"], UTC),
                    "at": at,
                    "low": min(seqs, default=0),
                    "high": max(seqs, default=-1),
                    # One JSON text per batch: PostgreSQL unpacks it in C, where adapting five
                    # Python lists of 1000 items to arrays cost the flusher most of its time.
                    "outcomes": orjson.dumps(outcomes).decode(),
                }
            )
            if entry["done"]:
                done_batches.append(
                    {
                        "job": entry["job"],
                        "seq": entry["batch"],
                        "created_at": datetime.fromtimestamp(entry["ca"], UTC),
                    }
                )
            if any(o[1] in (RecipientStatus.SUBMITTED, RecipientStatus.DELIVERED) for o in outcomes):
                first_sent[entry["job"]] = min(at, first_sent.get(entry["job"], at))
        with_callback = self._jobs_with_callback(conn, {p["job"] for p in params})
        with conn.cursor() as cur:
            plain = [p for p in params if p["job"] not in with_callback]
            if plain:
                cur.executemany(_APPLY_SUBMISSION, plain)
            if len(plain) < len(params):
                cur.executemany(
                    _APPLY_SUBMISSION_WITH_EVENTS, [p for p in params if p["job"] in with_callback]
                )
            if done_batches:
                cur.execute(
                    _BATCH_RANGES, ([b["job"] for b in done_batches], [b["seq"] for b in done_batches])
                )
                ranges = {(job, seq): (low, high) for job, seq, low, high in cur.fetchall()}
                for batch in done_batches:
                    batch["low"], batch["high"] = ranges.get((batch["job"], batch["seq"]), (0, -1))
                cur.executemany(_RECORD_BATCH, done_batches)
            if first_sent:
                cur.executemany(
                    "UPDATE jobs SET first_sent_at = %s WHERE id = %s AND first_sent_at IS NULL",
                    [(at, job) for job, at in first_sent.items()],
                )
        return sum(len(entry["o"]) for entry in submissions)

    def _apply_reports(
        self, conn: Connection, reports: list[dict[str, Any]]
    ) -> tuple[list[ReportChange], list[EarlyReport]]:
        by_job: dict[tuple[int, str | None], list[list[Any]]] = defaultdict(list)
        #: id(item) -> when it was first found early, for items that were.
        early_since: dict[int, float] = {}
        for entry in reports:
            carrier = entry.get("c")
            for item in entry["r"]:
                by_job[item[0], carrier].append(item)
                if entry.get("e") is not None:
                    early_since[id(item)] = entry["e"]
        early: list[EarlyReport] = []
        found_at = time.time()
        created = self._job_created_at(conn, {job_id for job_id, _ in by_job})
        changes: list[ReportChange] = []
        now = self.clock.now()
        cutoffs = {
            f"cutoff_{channel}": retry_cutoff(self.settings, channel, now)
            for channel in ("sms", "lms", "kakao")
        }
        with conn.cursor() as cur:
            for (job_id, carrier), items in by_job.items():
                if job_id not in created:
                    log.warning("report for unknown job", extra={"job_id": job_id, "reports": len(items)})
                    continue
                seqs = [i[1] for i in items]
                cur.execute(
                    _APPLY_REPORTS_WITH_EVENTS if self._jobs[job_id].has_callback else _APPLY_REPORTS,
                    {
                        "job": job_id,
                        "created_at": created[job_id],
                        "falls_back": self._jobs[job_id].falls_back,
                        "now": now,
                        # Entries from before reports named their carrier apply to any channel.
                        "channels": channels_of(carrier) if carrier else None,
                        "low": min(seqs),
                        "high": max(seqs),
                        # One JSON text per job, unpacked by PostgreSQL in C: six Python lists
                        # adapted item by item were half the flusher's CPU.
                        "reports": orjson.dumps(items).decode(),
                        "flushed_at": datetime.now(UTC),
                        **cutoffs,
                    },
                )
                changed = [ReportChange(job_id, *row) for row in cur.fetchall()]
                changes.extend(changed)
                if len(changed) < len(items):
                    for item in _still_queued(cur, job_id, created[job_id], items, changed):
                        early.append(EarlyReport(carrier, early_since.get(id(item), found_at), item))
        return changes, early

    def _requeue_early(self, early: list[EarlyReport]) -> None:
        """Put reports that came before their submission back on the result stream, behind it;
        those that waited `EARLY_REPORT_PATIENCE_SECONDS` already are left (the recipient's
        report deadline asks the carrier again)."""
        now = time.time()
        waiting: dict[str | None, list[EarlyReport]] = defaultdict(list)
        given_up = 0
        for report in early:
            if now - report.since > EARLY_REPORT_PATIENCE_SECONDS:
                given_up += 1
            else:
                waiting[report.carrier].append(report)
        if given_up:
            log.warning(
                "%d reports waited %.0f s for their submission to be recorded; left to the report deadline",
                given_up,
                EARLY_REPORT_PATIENCE_SECONDS,
            )
        if not waiting:
            return
        pipe = self.redis.pipeline(transaction=False)
        for carrier, reports in waiting.items():
            entry: dict[str, Any] = {
                "t": "report",
                "r": [r.item for r in reports],
                "e": min(r.since for r in reports),
            }
            if carrier is not None:
                entry["c"] = carrier
            pipe.xadd(self.keys.results, {"d": orjson.dumps(entry)})
        pipe.execute()
        log.debug(
            "reports back on the result stream to wait for their submission", extra={"reports": len(early)}
        )

    def _schedule_report_retries(self, conn: Connection, changes: list[ReportChange]) -> None:
        """Retry batches for recipients a report sent back to the queue (same transaction)."""
        groups: dict[tuple[int, str], list[ReportChange]] = defaultdict(list)
        for change in changes:
            if change.status == RecipientStatus.QUEUED and change.channel:
                groups[(change.job_id, change.channel)].append(change)
        now = self.clock.now()
        for (job_id, channel), group in groups.items():
            attempt = max(c.attempt for c in group)
            first = min((c.first_attempt_at for c in group if c.first_attempt_at), default=now)
            schedule_retry(
                conn,
                self.ledger,
                job_id=job_id,
                channel=channel,
                seqs=[c.seq for c in group],
                first_attempt_at=first,
                attempt=attempt,
                due_at=retry_due_at(self.settings, attempt, now),
            )

    def _create_fallbacks(
        self,
        conn: Connection,
        submissions: list[dict[str, Any]],
        report_changes: list[ReportChange],
    ) -> list[tuple[int, FallbackResult]]:
        wanted: dict[int, list[int]] = defaultdict(list)
        for entry in submissions:
            wanted[entry["job"]].extend(o[0] for o in entry["o"] if o[1] == RecipientStatus.FALLBACK)
        for change in report_changes:
            if change.status == RecipientStatus.FALLBACK:
                wanted[change.job_id].append(change.seq)
        wanted = {job: seqs for job, seqs in wanted.items() if seqs}
        if not wanted:
            return []
        created = self._job_created_at(conn, wanted)
        return [
            (job, create_fallbacks(conn, job, created[job], seqs, self.clock.now()))
            for job, seqs in wanted.items()
            if job in created
        ]

    def _count_fallbacks(self, fallbacks: list[tuple[int, FallbackResult]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        unsendable: dict[str, int] = defaultdict(int)
        for job_id, made in fallbacks:
            key = self.keys.job_counts(job_id)
            for name, value in _FALLBACK_ROW_QUEUED.items():
                pipe.hincrby(key, name, value * made.queued)
            for code, (count, text) in made.failed.items():
                for name, value in _FALLBACK_ROW_FAILED.items():
                    pipe.hincrby(key, name, value * count)
                pipe.hincrby(key, f"reason:{code}", count)
                pipe.hset(key, f"text:{code}", text)
                unsendable[code] += count
        pipe.execute()
        # A Kakao recipient whose fallback text cannot be sent (a missing variable) fails
        # without reaching a carrier, like a refusal at intake.
        count_intake_failures("kakao", unsendable)

    def _job_created_at(self, conn: Connection, job_ids: Iterable[int]) -> dict[int, datetime]:
        """Creation times of those of ``job_ids`` that exist (their ``_jobs`` entries fresh)."""
        wanted = list(job_ids)
        # Room first, so that no job of this call is dropped before the call has used it.
        while self._jobs and len(self._jobs) + len(wanted) > JOB_CACHE_SIZE:
            self._jobs.popitem(last=False)
        missing = [j for j in wanted if j not in self._jobs]
        if missing:
            rows = conn.execute(
                "SELECT id, created_at, fallback_channel IS NOT NULL, callback_url IS NOT NULL"
                " FROM jobs WHERE id = ANY(%s)",
                (missing,),
            ).fetchall()
            for job, created, falls_back, has_callback in rows:
                self._jobs[int(job)] = JobFacts(created, bool(falls_back), bool(has_callback))
        found = {}
        for job_id in wanted:
            if job_id in self._jobs:
                self._jobs.move_to_end(job_id)
                found[job_id] = self._jobs[job_id].created_at
        return found

    def _jobs_with_callback(self, conn: Connection, job_ids: Iterable[int]) -> set[int]:
        """Those of ``job_ids`` whose changes write callback events."""
        self._job_created_at(conn, job_ids)
        return {job_id for job_id in job_ids if job_id in self._jobs and self._jobs[job_id].has_callback}

    def _count_report_changes(self, changes: list[ReportChange]) -> None:
        # Summed per job and field first: one HINCRBY per field and job in this round, not two
        # per report (reports arrive one per recipient; docs/scaling.md counts the difference).
        deltas: Counter[tuple[int, str]] = Counter()
        texts: dict[tuple[int, str], str] = {}
        for job_id, _seq, status, code, text, *_ in changes:
            for name, change in report_delta(status).items():
                deltas[job_id, name] += change
            if status in STATUSES_WITH_REASON and code:
                deltas[job_id, f"reason:{code}"] += 1
                if text:
                    texts[job_id, f"text:{code}"] = text
        pipe = self.redis.pipeline(transaction=False)
        for (job_id, name), delta in deltas.items():
            pipe.hincrby(self.keys.job_counts(job_id), name, delta)
        for (job_id, name), text in texts.items():
            pipe.hset(self.keys.job_counts(job_id), name, text)
        pipe.execute()


def _still_queued(
    cur: Any, job_id: int, created_at: datetime, items: list[list[Any]], changed: list[ReportChange]
) -> list[list[Any]]:
    """Those of ``items`` (reports of one job) that changed nothing because their recipient is
    still queued at their attempt."""
    changed_seqs = {change.seq for change in changed}
    unchanged = [item for item in items if item[1] not in changed_seqs]
    seqs = [item[1] for item in unchanged]
    cur.execute(
        _STILL_QUEUED,
        {
            "job": job_id,
            "created_at": created_at,
            "low": min(seqs),
            "high": max(seqs),
            "reports": orjson.dumps(unchanged).decode(),
            "flushed_at": None,  # (result times are not read here)
        },
    )
    queued = {row[0] for row in cur.fetchall()}
    return [item for item in unchanged if item[1] in queued]
