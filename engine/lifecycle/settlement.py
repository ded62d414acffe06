"""Settlement: once a job is final, give back what it reserved for messages not delivered.

A job is settled exactly once: under the job row's lock, only a job that is finished and not yet
settled is settled, and the ledger accepts one ``refund`` row per job (a unique index), so a
settlement run twice — by the finishing flusher and by the sweep, or by two replicas — refunds once.

What is charged, at the prices reserved at intake (``jobs.prices``): each delivered message at
its channel's price, and a KakaoTalk recipient's delivered fallback at the fallback price of its
channel. Each ``unknown`` message (accepted, but no result by its report deadline) is charged
too, as the provider does: NHN Cloud charges a message when it accepts it, whatever its carrier
reports later or never, and the message may well have arrived. Everything else reserved is
refunded: failed, expired and cancelled recipients, Kakao recipients whose fallback went
instead, and the difference between a Kakao reservation and a cheaper outcome.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from psycopg import Connection

from engine.accounts import billing
from engine.lifecycle.statuses import RecipientStatus
from metrics import JOBS_SETTLED, SETTLEMENT_REFUNDS

log = logging.getLogger(__name__)

#: Statuses of the messages a job is charged for: delivered, and unknown (the provider charged
#: them on acceptance; see above). The send statistics count charges by the same rule.
CHARGED_RECIPIENT_STATUSES = frozenset({RecipientStatus.DELIVERED, RecipientStatus.UNKNOWN})

_CHARGED_BY_CHANNEL = """
    SELECT channel, fallback_of IS NOT NULL, count(*) FROM recipients
    WHERE job_id = %s AND job_created_at = %s AND status = ANY(%s)
    GROUP BY 1, 2
"""


def settle_job(conn: Connection, job_id: int) -> Decimal | None:
    """Refund the finished job's messages neither delivered nor unknown; the amount refunded, or
    None if the job is not finished, already settled, or was never charged (jobs from before
    balances existed)."""
    with conn.transaction():
        return settle_locked(conn, job_id)


def settle_locked(conn: Connection, job_id: int) -> Decimal | None:
    """`settle_job` inside the caller's transaction (the one that finishes the job)."""
    row = conn.execute(
        """
        SELECT tenant_id, created_at, prices FROM jobs
        WHERE id = %s AND completed_at IS NOT NULL AND settled_at IS NULL
        FOR UPDATE
        """,
        (job_id,),
    ).fetchone()
    if row is None:
        return None
    tenant_id, created_at, stored_prices = row
    conn.execute("UPDATE jobs SET settled_at = now() WHERE id = %s", (job_id,))
    charged = billing.job_money(conn, job_id).charged
    if stored_prices is None:
        return None
    prices = billing.Prices.from_json(stored_prices)
    cost = billing.ZERO
    charged_statuses = sorted(status.value for status in CHARGED_RECIPIENT_STATUSES)
    for channel, is_fallback, count in conn.execute(
        _CHARGED_BY_CHANNEL, (job_id, created_at, charged_statuses)
    ):
        cost += count * prices.of(f"fallback_{channel}" if is_fallback else channel)
    refund = max(charged - cost, billing.ZERO).quantize(billing.ZERO)
    billing.append(conn, tenant_id, "refund", refund, job_id=job_id, memo="undelivered messages")
    JOBS_SETTLED.inc()
    SETTLEMENT_REFUNDS.inc(float(refund))
    log.info("job settled", extra={"job_id": job_id, "charged": str(charged), "refunded": str(refund)})
    return refund


def unsettled_jobs(conn: Connection, limit: int = 500) -> list[int]:
    """Finished jobs not yet settled, oldest first (for the settlement sweep)."""
    rows = conn.execute(
        "SELECT id FROM jobs WHERE completed_at IS NOT NULL AND settled_at IS NULL"
        " ORDER BY completed_at LIMIT %s",
        (limit,),
    ).fetchall()
    return [int(r[0]) for r in rows]
