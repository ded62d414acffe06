"""The scheduler's duties: flush results, the outbox, reconciliation, report polling, the report
deadline, upkeep."""

from __future__ import annotations

import logging
import uuid
from datetime import date, timedelta

from redis.exceptions import RedisError

from carriers.base import Channel
from engine.attribution import attribution
from engine.dispatch.planning import (
    BatchRef,
    jobs_with_unpublished_batches,
    lost_batches,
    top_up,
    unplanned_jobs,
)
from engine.dispatch.reconcile import ONLY_DEAD_CLAIMS, stale_batches
from engine.dispatch.worker_leases import dead_claims, forget_lapsed
from engine.intake.resend import unfilled_resends
from engine.intake.reservations import start_due_reservations
from engine.lifecycle import counters, dead_entries
from engine.lifecycle.completion import finish_completed_jobs
from engine.lifecycle.flusher import Flusher
from engine.lifecycle.report_deadline import expire_reports
from engine.lifecycle.results import unflushed_age
from engine.lifecycle.retries import release_due
from engine.lifecycle.settlement import settle_job, unsettled_jobs
from engine.reporting.retention import purge_expired, purge_old_stats
from engine.runtime import Runtime
from metrics import PARTITIONS_DROPPED, REDIS_DATA_LOST, RESERVATIONS
from scheduler.report_overlap import RereadReports
from scheduler.report_poll import KAKAO_REPORT_OVERLAP, REPORT_OVERLAP, REPORT_SETTLE, poll_reports
from scheduler.runner import Duty

log = logging.getLogger(__name__)

FLUSH_PAGE = 500


def build_duties(rt: Runtime) -> list[Duty]:
    flusher = Flusher(rt.pool, rt.redis, rt.keys, consumer=rt.worker_id, settings=rt.settings, clock=rt.clock)
    settings = rt.settings
    reread = RereadReports()  # the two polls read different channels
    return [
        Duty("flush_results", settings.flush_interval_seconds, lambda: flush(flusher)),
        Duty("outbox", 2.0, lambda: outbox(rt)),
        # As often as a lease is renewed: a batch whose holder is gone is taken over within a
        # second of its lease lapsing.
        Duty("take_over", settings.worker_lease_seconds / 5, lambda: take_over_stale(rt)),
        Duty("redis_generation", 1.0, lambda: watch_redis_generation(rt)),
        Duty(
            "poll_reports",
            2.0,
            lambda: poll_reports(
                rt, (Channel.SMS, Channel.LMS), REPORT_SETTLE, REPORT_OVERLAP, reread, follow_results=True
            ),
        ),
        # KakaoTalk results come by webhook first; the provider's result query has minute
        # precision, so its poll trails further behind and overlaps a whole minute.
        Duty(
            "poll_kakao_reports",
            settings.kakao_report_poll_seconds,
            lambda: poll_reports(
                rt,
                (Channel.KAKAO,),
                timedelta(seconds=settings.kakao_report_settle_seconds),
                KAKAO_REPORT_OVERLAP,
                reread,
            ),
        ),
        Duty("finish_jobs", 10.0, lambda: sweep_open_jobs(rt)),
        Duty("report_deadline", settings.report_deadline_poll_seconds, lambda: expire_reports(rt).more),
        Duty("settle_jobs", 30.0, lambda: settle_finished_jobs(rt)),
        Duty("partitions", 3600.0, lambda: ensure_partitions(rt)),
        Duty("retry_pump", 1.0, lambda: pump_retries(rt)),
        Duty("retry_ledger_rebuild", 60.0, lambda: rebuild_retry_ledger(rt)),
        Duty("reservations", settings.reservation_poll_seconds, lambda: start_reservations(rt)),
        Duty("retention", settings.retention_interval_seconds, lambda: purge_old_results(rt)),
        Duty("reattribute_orders", 300.0, lambda: reattribute_orders(rt)),
        Duty("forget_worker_leases", 600.0, lambda: forget_worker_leases(rt)),
    ]


def flush(flusher: Flusher) -> bool:
    return flusher.flush_once(FLUSH_PAGE).entries >= FLUSH_PAGE


def outbox(rt: Runtime) -> None:
    """Plan jobs committed but never planned; fill resend jobs never filled; keep every sending
    job's window of batches full (a worker that died after finishing a batch never published
    the next); publish again batches whose message seems lost."""
    from actors.publish import publish_or_keep, publish_plan, publish_resend

    settings = rt.settings
    with rt.pool.connection() as conn:
        jobs = unplanned_jobs(conn, settings.replan_after_seconds)
        refills = [
            ref
            for job_id in jobs_with_unpublished_batches(conn)
            for ref in top_up(conn, job_id, settings.batch_window)
        ]
        lost = lost_batches(conn, settings.republish_after_seconds)
        resends = unfilled_resends(conn, rt.clock.now(), settings.replan_after_seconds)
    for job_id in jobs:
        log.info("planning a job found unplanned", extra={"job_id": job_id})
        publish_plan(job_id)
    for job_id in resends:
        log.info("filling a resend job found unfilled", extra={"job_id": job_id})
        publish_resend(job_id)
    if lost:
        log.warning("publishing again batches whose message seems lost", extra={"batches": len(lost)})
    publish_or_keep([*refills, *lost])


#: A takeover published is not published again for this long (its message may be queued). Short:
#: the message may sit in a frozen worker's prefetch, and a second one finds nothing to do once
#: the first has taken the batch (its claim is then alive).
TAKEOVER_REPEAT_SECONDS = 2
#: While a holder is gone, batches published this long ago and still unclaimed are published
#: again: a frozen process holds the messages it prefetched until RabbitMQ gives up on its
#: connection (a minute or more). A duplicate message is harmless: only one claim wins.
PREFETCHED_REPUBLISH_SECONDS = 2.0


def take_over_stale(rt: Runtime) -> None:
    """Publish a takeover (`actors.jobs.reconcile_batch`) for each batch whose holder is gone:
    claimed under a lapsed lease, or let go while its outcomes, which the flusher should have
    applied by now, are still not in PostgreSQL (Redis lost them)."""
    from actors.publish import publish_or_keep, publish_reconcile

    try:
        # Outcomes are in the result stream before their batch is let go: once the flusher is
        # past a batch's let-go time (plus the setting's margin), its outcomes were applied.
        sent_older_than_seconds = unflushed_age(rt.redis, rt.keys) + rt.settings.reconcile_after_seconds
    except RedisError:
        sent_older_than_seconds = ONLY_DEAD_CLAIMS  # where the flusher is cannot be told now
    with rt.pool.connection() as conn:
        stale = stale_batches(conn, sent_older_than_seconds)
        holders_gone = bool(dead_claims(conn, limit=1))
        prefetched = lost_batches(conn, PREFETCHED_REPUBLISH_SECONDS) if holders_gone else []
    for job_id, batch_seq in stale:
        if _first_takeover(rt, job_id, batch_seq):
            publish_reconcile(job_id, batch_seq)
    if prefetched:
        log.warning(
            "a worker is gone: publishing again its batches' messages it may hold",
            extra={"batches": len(prefetched)},
        )
        publish_or_keep(prefetched)


def _first_takeover(rt: Runtime, job_id: int, batch_seq: int) -> bool:
    """True unless this batch's takeover was published moments ago (then its message is still
    on its way). Without Redis, every takeover is published: a second one finds nothing to do."""
    try:
        return bool(rt.redis.set(rt.keys.takeover(job_id, batch_seq), 1, nx=True, ex=TAKEOVER_REPEAT_SECONDS))
    except RedisError:
        return True


def watch_redis_generation(rt: Runtime) -> None:
    """Notice at once that Redis lost its data (restarted empty, failed over to an empty
    replica), and rebuild from PostgreSQL then, not on the next sweep: the retry ledger, the
    counters of open jobs, and the batches whose outcomes were in the lost result stream."""
    if rt.redis.get(rt.keys.generation) is not None:
        return
    # A value of its own each time: a report poll that read another before tells that Redis
    # lost its data meanwhile (`scheduler.report_poll`), even when this same process marks it.
    if not rt.redis.set(rt.keys.generation, f"{rt.worker_id}:{uuid.uuid4().hex}", nx=True):
        return  # another scheduler replica saw it first and rebuilds
    log.warning("Redis has lost its data (or is new): rebuilding its state from PostgreSQL")
    REDIS_DATA_LOST.inc()
    rebuild_retry_ledger(rt)
    sweep_open_jobs(rt)
    # Outcomes of batches let go were in the lost stream: the carrier is asked about them once
    # the flusher's margin has passed (`take_over_stale`, every second).


def sweep_open_jobs(rt: Runtime) -> None:
    """Finish jobs whose last event was missed, and rebuild counters Redis lost."""
    with rt.pool.connection() as conn:
        rows = conn.execute(
            "SELECT id, created_at FROM jobs WHERE completed_at IS NULL AND planned_at IS NOT NULL"
            " ORDER BY id LIMIT 1000"
        ).fetchall()
        for job_id, created_at in rows:
            # A hash without its total was lost and re-created by a worker's increments.
            if not rt.redis.hexists(rt.keys.job_counts(job_id), "total"):
                log.warning("counters missing; recounting from PostgreSQL", extra={"job_id": job_id})
                counters.replace(rt.redis, rt.keys, job_id, counters.recount(conn, job_id, created_at))
        finish_completed_jobs(conn, rt.redis, rt.keys, [int(r[0]) for r in rows], use_hints=False)


def settle_finished_jobs(rt: Runtime) -> None:
    """Settle finished jobs that are not yet (a job normally settles in the transaction that
    finishes it; this catches any other way a job ends, such as a cancelled reservation)."""
    with rt.pool.connection() as conn:
        for job_id in unsettled_jobs(conn):
            settle_job(conn, job_id)


def ensure_partitions(rt: Runtime) -> None:
    """Keep this month's and next month's recipient partitions in place ahead of intake."""
    today = rt.clock.now().date()
    next_month = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    with rt.pool.connection() as conn:
        for month in (today.replace(day=1), next_month):
            conn.execute("SELECT ensure_recipients_partition(%s)", (month,))


RETRY_PAGE = 500


def pump_retries(rt: Runtime) -> bool:
    """Publish the retry batches that are due (a page at a time)."""
    from actors.publish import publish_or_keep

    due = rt.retry_ledger.due(rt.clock.now(), RETRY_PAGE)
    if not due:
        return False
    refs = []
    with rt.pool.connection() as conn:
        for batch in due:
            released = release_due(conn, batch)
            if released is not None:
                channel, priority, _first_attempt, _attempt = released
                refs.append(BatchRef(batch.job_id, batch.seq, channel, priority))
    publish_or_keep(refs)
    rt.retry_ledger.remove(due)
    return len(due) >= RETRY_PAGE


def rebuild_retry_ledger(rt: Runtime) -> None:
    """Put back into the ledger any waiting batch Redis lost (a restart keeps nothing)."""
    with rt.pool.connection() as conn:
        rt.retry_ledger.rebuild(conn)


RESERVATION_PAGE = 500


def start_reservations(rt: Runtime) -> bool:
    """Start due reservations (publish their plan_job) and mark overdue ones missed. A crash
    after the commit leaves started jobs accepted and unplanned: the outbox plans them."""
    from actors.publish import publish_plan

    with rt.pool.connection() as conn:
        pumped = start_due_reservations(
            conn, rt.clock.now(), rt.settings.reservation_grace_seconds, RESERVATION_PAGE
        )
    RESERVATIONS.labels("started").inc(len(pumped.started))
    RESERVATIONS.labels("missed").inc(len(pumped.missed))
    for job_id in pumped.missed:
        log.warning("reservation missed: its time passed while the system was down", extra={"job_id": job_id})
    for job_id in pumped.started:
        log.info("reservation due; planning", extra={"job_id": job_id})
        publish_plan(job_id)
    return max(len(pumped.started), len(pumped.missed)) >= RESERVATION_PAGE


def purge_old_results(rt: Runtime) -> None:
    """Delete jobs and drop recipients partitions of months wholly past retention."""
    # Retention detaches only once the coming partitions exist (see engine.reporting.retention); making
    # them is the partitions duty's work, done here too so a purge never waits an hour for it.
    ensure_partitions(rt)
    with rt.pool.connection() as conn:
        purge = purge_expired(conn, rt.clock.now(), rt.settings.retention_days)
        dead_entries.purge(conn, rt.clock.now() - timedelta(days=rt.settings.retention_days))
        stats_rows = purge_old_stats(conn, rt.clock.now(), rt.settings.stats_retention_days)
    if stats_rows:
        log.info(
            "retention: send statistics past %d days removed",
            rt.settings.stats_retention_days,
            extra={"rows": stats_rows},
        )
    if purge.job_ids:
        pipe = rt.redis.pipeline(transaction=False)
        for job_id in purge.job_ids:
            pipe.delete(rt.keys.job_counts(job_id))
        pipe.execute()
    PARTITIONS_DROPPED.inc(len(purge.months))
    if purge.job_ids or purge.months:
        log.info(
            "retention: results past %d days removed",
            rt.settings.retention_days,
            extra={"jobs": len(purge.job_ids), "months": [f"{m:%Y-%m}" for m in purge.months]},
        )


def forget_worker_leases(rt: Runtime) -> None:
    """Delete worker leases lapsed an hour ago whose batches were all taken over."""
    with rt.pool.connection() as conn:
        forget_lapsed(conn)


def reattribute_orders(rt: Runtime) -> None:
    """Attribute recent orders again: a delivery reported after the order came in may credit it."""
    with rt.pool.connection() as conn:
        attribution.reattribute_recent(conn, rt.clock.now())
