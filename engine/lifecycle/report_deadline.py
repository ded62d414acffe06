"""The report deadline: a recipient the carrier accepted but never reported on ends ``unknown``.

Owns the rule that nothing stays in flight for ever. A recipient still ``submitted`` longer than
its channel's report deadline after its submission (``BALSONG_REPORT_DEADLINE_{SMS,LMS,KAKAO}_SECONDS``,
72 hours by default: `engine.config.Settings`) is asked about once more at its carrier, by our
reference (`carriers.base.Carrier.lookup`, as reconciliation asks):

- a final result found there (delivered, failed, "try again") goes in through the one way in for
  reports (`engine.lifecycle.reports.ingest_reports`, source ``lookup``), and the flusher applies
  it by the transition table like any other report;
- otherwise (the carrier still says "accepted", or knows nothing of it) the recipient ends
  ``unknown`` with reason ``no_report``: the transition table's ``NO_REPORT`` event
  (`engine.lifecycle.transitions`), applied here in SQL to rows still ``submitted`` in the
  attempt asked about, the counters moved by that transition for the rows that changed. A report
  arriving later changes nothing (states only move forward).

Its job can then finish and be settled (`engine.lifecycle.completion`). ``unknown`` is not a
failure and is not refunded (`engine.lifecycle.settlement`): NHN Cloud charges a message when it
accepts it, and it may well have arrived.

Bounded work: one pass takes at most `PAGE` recipients. It finds them through the open jobs
(``jobs_open``, a partial index of the few unfinished jobs) that began sending before the
shortest deadline, then walks each such job's recipients by primary key (job, seq) in seq order.
No index names ``status`` or ``submitted_at``: one that did would make every outcome the flusher
writes a non-HOT update (see migration 0012), so no migration is needed.

If the carrier cannot be asked (down, timing out), nobody is marked: the next pass asks again.

Imports: engine's runtime (settings, clock, keys via `engine.runtime`), `engine.dispatch.references`,
and within the lifecycle `transitions`, `statuses`, `reports`, `completion`, `pipeline_metrics`;
carriers/ for the carrier protocol and its errors.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from psycopg import Connection
from psycopg_pool import ConnectionPool
from redis import Redis

from carriers.base import Channel, Outcome, SubmitOutcome
from carriers.errors import CarrierError
from engine.callbacks.outbox import events_from
from engine.config import Settings
from engine.dispatch.references import make_reference
from engine.keys import Keys
from engine.lifecycle.completion import finish_completed_jobs
from engine.lifecycle.pipeline_metrics import count_unknown
from engine.lifecycle.recipient_times import completed_at_sql
from engine.lifecycle.reports import ingest_reports
from engine.lifecycle.statuses import RecipientStatus
from engine.lifecycle.transitions import Event, Standing, decide
from engine.runtime import Runtime

log = logging.getLogger(__name__)

#: Recipients one pass takes at most (asked of the carriers, then marked).
PAGE = 1000
#: Open jobs one pass looks into at most.
JOB_PAGE = 100
#: References asked of a carrier in one lookup call (its query takes one per request).
LOOKUP_CHUNK = 50
#: How far before the earliest submission to look for the carrier's records (clock skew).
LOOKUP_MARGIN = timedelta(minutes=5)
#: The reason code of a recipient that ended ``unknown``.
NO_REPORT_REASON = "no_report"

#: What the deadline does to a recipient in flight: the transition table's word, read once.
_IN_FLIGHT = Standing(RecipientStatus.SUBMITTED, submitted=True)
_NO_REPORT = decide(_IN_FLIGHT, Event.NO_REPORT)
assert _NO_REPORT is not None
NO_REPORT = _NO_REPORT

_CHANNELS = (Channel.SMS.value, Channel.LMS.value, Channel.KAKAO.value)

# Unfinished jobs that began sending before the shortest deadline: the jobs_open partial index.
_CANDIDATE_JOBS = """
    SELECT id, created_at FROM jobs
    WHERE completed_at IS NULL AND planned_at IS NOT NULL AND first_sent_at < %(before)s
      AND id > %(after)s
    ORDER BY id LIMIT %(limit)s
"""

# One job's recipients past their channel's deadline, in seq order: a primary-key walk.
_OVERDUE = """
    SELECT seq, channel, attempt, submitted_at FROM recipients
    WHERE job_id = %(job)s AND job_created_at = %(created_at)s
      AND status = 'submitted'
      AND submitted_at < CASE channel WHEN 'kakao' THEN %(cutoff_kakao)s
                                      WHEN 'lms' THEN %(cutoff_lms)s ELSE %(cutoff_sms)s END
    ORDER BY seq LIMIT %(limit)s
"""

# Only rows still in flight in the attempt asked about move (a report applied meanwhile, or a
# later attempt, wins); RETURNING says which did, so the counters move for those alone.
# Their callback events go to the outbox in the same statement.
_MARK_UNKNOWN = f"""
    WITH changed AS (
        UPDATE recipients AS r
        SET status = %(status)s, reason_code = %(code)s, reason_text = u.text,
            completed_at = {completed_at_sql("%(at)s")}
        FROM unnest(%(seqs)s::int[], %(attempts)s::int[], %(texts)s::text[]) AS u (seq, attempt, text)
        WHERE r.job_id = %(job)s AND r.job_created_at = %(created_at)s
          AND r.seq BETWEEN %(low)s AND %(high)s AND r.seq = u.seq AND r.attempt = u.attempt
          AND r.status = 'submitted'
        RETURNING r.job_id, r.seq, r.attempt, r.status, r.reason_code, r.reason_text, r.completed_at AS at,
                  r.channel
    ),
    events AS ({events_from("changed")})
    SELECT seq, channel FROM changed
"""


@dataclass(frozen=True, slots=True)
class Overdue:
    """A recipient in flight past its report deadline."""

    job_id: int
    job_created_at: datetime
    seq: int
    channel: str
    attempt: int
    submitted_at: datetime

    @property
    def reference(self) -> str:
        return make_reference(self.job_id, self.seq, self.attempt)


@dataclass(slots=True)
class Pass:
    """What one pass did."""

    #: Recipients found past their deadline.
    overdue: int = 0
    #: Final results the carriers still had, handed to the report ingest.
    reported: int = 0
    #: Recipients ended ``unknown`` by the pass, by channel.
    unknown: dict[str, int] = field(default_factory=dict)
    #: Recipients left for the next pass (their carrier could not be asked).
    deferred: int = 0
    #: Jobs finished by the pass.
    jobs_finished: list[int] = field(default_factory=list)
    #: Run the pass again at once (a whole page, every one ended here).
    more: bool = False


def cutoffs(settings: Settings, now: datetime) -> dict[str, datetime]:
    """Per channel, the submission time before which a recipient in flight is past its deadline."""
    return {
        f"cutoff_{channel}": now - timedelta(seconds=settings.channel(channel).report_deadline_seconds)
        for channel in _CHANNELS
    }


def no_report_text(settings: Settings, channel: str) -> str:
    """The reason text of a recipient of ``channel`` that ended ``unknown``."""
    hours = settings.channel(channel).report_deadline_seconds / 3600
    return f"no delivery result from the carrier within {hours:g} hours of submission, nor when asked again"


def find_overdue(
    conn: Connection, settings: Settings, now: datetime, limit: int = PAGE, after_job: int = 0
) -> tuple[list[Overdue], int]:
    """Up to ``limit`` recipients in flight past their channel's report deadline, from open jobs
    after ``after_job``; and the job to start after next time (0: from the first again), so that
    many long-running jobs are all looked into in turn."""
    limits = cutoffs(settings, now)
    found: list[Overdue] = []
    # The latest cutoff is the shortest deadline's: a job that began sending after it has no
    # recipient past any deadline yet.
    jobs = conn.execute(
        _CANDIDATE_JOBS, {"before": max(limits.values()), "after": after_job, "limit": JOB_PAGE}
    ).fetchall()
    for job_id, created_at in jobs:
        rows = conn.execute(
            _OVERDUE, {"job": job_id, "created_at": created_at, "limit": limit - len(found), **limits}
        ).fetchall()
        found.extend(Overdue(int(job_id), created_at, int(s), c, int(a), at) for s, c, a, at in rows)
        if len(found) >= limit:
            return found, int(job_id) - 1  # this job may have more: start with it next time
    return found, int(jobs[-1][0]) if len(jobs) == JOB_PAGE else 0


def expire_reports(rt: Runtime, limit: int = PAGE) -> Pass:
    """One pass: find recipients past their report deadline, ask their carriers once more,
    ingest the final results found, and end the rest ``unknown``. See the module docstring."""
    now = rt.clock.now()
    cursor_key = rt.keys.cursor("report_deadline")
    after = int(rt.redis.get(cursor_key) or 0)
    with rt.pool.connection() as conn:
        overdue, next_after = find_overdue(conn, rt.settings, now, limit, after)
    rt.redis.set(cursor_key, next_after)
    result = Pass(overdue=len(overdue))
    if not overdue:
        return result
    by_channel: dict[str, list[Overdue]] = defaultdict(list)
    for recipient in overdue:
        by_channel[recipient.channel].append(recipient)
    silent: list[Overdue] = []
    for channel, recipients in by_channel.items():
        asked = _ask_again(rt, channel, recipients)
        if asked is None:
            result.deferred += len(recipients)
            continue
        finals, unreported = asked
        result.reported += len(finals)
        silent.extend(unreported)
    # Run again at once only after a whole page all settled here: recipients whose results were
    # just ingested stay in flight until the flusher applies them (asking again would be waste),
    # and a carrier that could not be asked is not asked again before the next interval.
    result.more = len(overdue) >= limit and not result.deferred and not result.reported
    if silent:
        changed = mark_unknown(rt.pool, rt.redis, rt.keys, rt.settings, silent, now)
        for channel, count in changed.items():
            count_unknown(channel, count)
        result.unknown = changed
        with rt.pool.connection() as conn:
            result.jobs_finished = finish_completed_jobs(
                conn, rt.redis, rt.keys, sorted({r.job_id for r in silent})
            )
    log.info(
        "report deadline pass",
        extra={
            "overdue": result.overdue,
            "reported": result.reported,
            "unknown": sum(result.unknown.values()),
            "deferred": result.deferred,
            "jobs_finished": len(result.jobs_finished),
        },
    )
    return result


def _ask_again(
    rt: Runtime, channel: str, recipients: Sequence[Overdue]
) -> tuple[list[SubmitOutcome], list[Overdue]] | None:
    """Ask the carrier of ``channel`` about ``recipients``; ingest the final results it has.
    Returns (those results, the recipients it has none for), or None if it could not be asked."""
    carrier = rt.carrier_for(channel)
    since = min(r.submitted_at for r in recipients) - LOOKUP_MARGIN
    wanted = {r.reference: r for r in recipients}
    known: dict[str, SubmitOutcome] = {}
    references = list(wanted)
    try:
        for start in range(0, len(references), LOOKUP_CHUNK):
            chunk = references[start : start + LOOKUP_CHUNK]
            for outcome in carrier.lookup(Channel(channel), chunk, since=since):
                if outcome.reference in wanted:
                    known[outcome.reference] = outcome
    except CarrierError as exc:
        log.warning(
            "report deadline: the carrier could not be asked; trying again on the next pass (%s)",
            type(exc).__name__,
            extra={"carrier": carrier.name, "channel": channel, "recipients": len(recipients)},
        )
        return None
    finals = [o for o in known.values() if o.outcome is not Outcome.ACCEPTED]
    if finals:
        ingest_reports(rt, carrier.name, "lookup", finals)
    final_references = {o.reference for o in finals}
    return finals, [r for r in recipients if r.reference not in final_references]


def mark_unknown(
    pool: ConnectionPool,
    redis: Redis,
    keys: Keys,
    settings: Settings,
    recipients: Sequence[Overdue],
    at: datetime,
) -> dict[str, int]:
    """End ``recipients`` ``unknown`` (those still in flight in that attempt); the counts changed,
    by channel. The counters move after the commit, by the transition for the rows that moved."""
    by_job: dict[tuple[int, datetime], list[Overdue]] = defaultdict(list)
    for recipient in recipients:
        by_job[recipient.job_id, recipient.job_created_at].append(recipient)
    texts = {channel: no_report_text(settings, channel) for channel in _CHANNELS}
    moved: dict[int, int] = {}
    by_channel: dict[str, int] = defaultdict(int)
    with pool.connection() as conn, conn.transaction():
        for (job_id, created_at), group in by_job.items():
            seqs = [r.seq for r in group]
            rows = conn.execute(
                _MARK_UNKNOWN,
                {
                    "status": NO_REPORT.after.status,
                    "code": NO_REPORT_REASON,
                    "at": at,
                    "job": job_id,
                    "created_at": created_at,
                    "low": min(seqs),
                    "high": max(seqs),
                    "seqs": seqs,
                    "attempts": [r.attempt for r in group],
                    "texts": [texts.get(r.channel, texts["sms"]) for r in group],
                },
            ).fetchall()
            if rows:
                moved[job_id] = len(rows)
            for _seq, channel in rows:
                by_channel[channel or "sms"] += 1
    pipe = redis.pipeline(transaction=False)
    for job_id, count in moved.items():
        for name, change in NO_REPORT.counters.items():
            pipe.hincrby(keys.job_counts(job_id), name, change * count)
    pipe.execute()
    return dict(by_channel)
