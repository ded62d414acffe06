"""Per-tenant intake limits, against a runaway upstream loop or a stolen key running up costs.

- Requests per second on job intake: a counter per tenant and second in Redis. If Redis is
  unreachable the request goes on: the limit guards cost, and the balance still caps it.
- Recipients per KST day: the sum of the day's jobs in PostgreSQL, checked inside the intake
  transaction while the tenant's balance row is locked, so two jobs at once cannot both slip
  under the limit.
- Job request bytes in flight and submissions at once: the intake budget, enforced by
  `engine.intake.intake_budget`; only its per-tenant values are kept here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from psycopg import Connection
from redis import Redis
from redis.exceptions import RedisError

from engine.clock import KST
from engine.config import Settings
from engine.errors import IntakeLimited
from engine.keys import Keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    #: Job submissions per second (0: no limit).
    requests_per_second: float
    #: Recipients per KST calendar day (0: no limit).
    recipients_per_day: int
    #: Job request bytes in flight at once, over every API process (0: no limit).
    max_bytes_in_flight: int
    #: Job submissions in progress at once, over every API process (0: no limit).
    max_concurrent: int


def limits_for(conn: Connection, settings: Settings, tenant_id: int) -> IntakeLimits:
    """The tenant's own limits where set, the settings' otherwise."""
    row = conn.execute(
        "SELECT intake_requests_per_second, intake_recipients_per_day, intake_max_bytes_in_flight,"
        " intake_max_concurrent FROM tenants WHERE id = %s",
        (tenant_id,),
    ).fetchone()
    own_rate, own_daily, own_bytes, own_concurrent = row if row else (None, None, None, None)
    return IntakeLimits(
        requests_per_second=settings.intake_requests_per_second if own_rate is None else float(own_rate),
        recipients_per_day=settings.intake_recipients_per_day if own_daily is None else int(own_daily),
        max_bytes_in_flight=(
            settings.intake_max_bytes_in_flight_per_tenant if own_bytes is None else int(own_bytes)
        ),
        max_concurrent=settings.intake_max_concurrent_per_tenant
        if own_concurrent is None
        else int(own_concurrent),
    )


def set_limits(
    conn: Connection,
    tenant_id: int,
    *,
    requests_per_second: float | None,
    recipients_per_day: int | None,
    max_bytes_in_flight: int | None = None,
    max_concurrent: int | None = None,
) -> None:
    """Give the tenant its own limits; None returns a limit to the settings' value."""
    conn.execute(
        "UPDATE tenants SET intake_requests_per_second = %s, intake_recipients_per_day = %s,"
        " intake_max_bytes_in_flight = %s, intake_max_concurrent = %s WHERE id = %s",
        (requests_per_second, recipients_per_day, max_bytes_in_flight, max_concurrent, tenant_id),
    )


def check_request_rate(redis: Redis, keys: Keys, tenant_id: int, limits: IntakeLimits, now: datetime) -> None:
    """Count this submission; IntakeLimited if the tenant is over its requests per second."""
    if limits.requests_per_second <= 0:
        return
    key = keys.intake_rate(tenant_id, int(now.timestamp()))
    try:
        pipe = redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, 2)
        count = int(pipe.execute()[0])
    except RedisError as exc:
        log.warning("intake rate not checked: Redis unavailable (%s)", exc)
        return
    if count > limits.requests_per_second:
        raise IntakeLimited(
            "too_many_requests",
            f"more than {limits.requests_per_second:g} job submissions per second; slow down",
            retry_after_seconds=1,
        )


def check_daily_recipients(
    conn: Connection, tenant_id: int, job_id: int, recipients: int, limits: IntakeLimits, now: datetime
) -> None:
    """IntakeLimited if this job takes the tenant over its recipients for the KST day.

    Call inside the intake transaction, after the balance row is locked (`engine.accounts.billing`)."""
    if limits.recipients_per_day <= 0:
        return
    local = now.astimezone(KST)
    day_start = datetime.combine(local.date(), time(), KST)
    row = conn.execute(
        "SELECT coalesce(sum(total), 0) FROM jobs WHERE tenant_id = %s AND created_at >= %s AND id <> %s",
        (tenant_id, day_start, job_id),
    ).fetchone()
    used = int(row[0]) if row else 0
    if used + recipients > limits.recipients_per_day:
        tomorrow = day_start + timedelta(days=1)
        raise IntakeLimited(
            "daily_recipient_limit",
            f"{used:,} recipients today and {recipients:,} in this job pass the limit of "
            f"{limits.recipients_per_day:,} per day (KST)",
            retry_after_seconds=max(1, int((tomorrow - local).total_seconds())),
        )
