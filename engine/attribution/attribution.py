"""Last-touch attribution: which delivered message an order is credited to.

An order is credited to the most recent message *delivered* to the order's member (recipient
``member_id``) by the same tenant, at most the tenant's window (``attribution_window_seconds``,
3 days by default) before the order: delivery time in ``[ordered_at - window, ordered_at]``,
both ends included. The delivery time is the recipient's ``completed_at``. A KakaoTalk recipient
whose message went by SMS/LMS fallback has status ``fallback`` and its fallback row (same job,
same member) is the one delivered, so it is that row that is credited. Ties (two deliveries at
the same instant) go to the later job, then the later seq, so the choice is stable.

It is one set-based statement for any number of orders: per order, one probe of the partial
index ``recipients_delivered_by_member`` (member, delivery time descending), in each month's
partition; no Python loop. It runs

- at intake, for the orders of the request (``engine.attribution.orders.store_orders``), and
- from the scheduler (:func:`reattribute_recent`), for orders recent enough that a delivery
  report may still change the answer: reports arrive up to two days after sending, so an order
  placed minutes after a message may find its delivery only later.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from psycopg import Connection, sql

#: How far back the scheduler re-attributes orders: delivery reports (and KakaoTalk fallbacks)
#: may arrive up to two days after sending; an hour more for the report pollers' lag.
REATTRIBUTE_SECONDS = 49 * 3600.0
#: Order time covered by one transaction of the sweep.
SLICE_SECONDS = 3600.0

_ATTRIBUTE = """
    WITH target AS (
        SELECT o.tenant_id, o.order_number, o.member_id, o.ordered_at, o.attributed_job_id, o.attributed_seq,
               o.ordered_at - make_interval(secs => t.attribution_window_seconds) AS window_start
        FROM orders o JOIN tenants t ON t.id = o.tenant_id
        WHERE {selector}
        -- Probing in member order, each probe finds the index pages the previous one read in
        -- memory; in order-number order, a large run reads the whole index at random.
        ORDER BY o.member_id, o.ordered_at
    ),
    changed AS (
        SELECT tg.tenant_id, tg.order_number, last.job_id, last.seq
        FROM target tg
        LEFT JOIN LATERAL (
            SELECT r.job_id, r.seq
            FROM recipients r JOIN jobs j ON j.id = r.job_id
            WHERE r.member_id = tg.member_id
              AND r.status = 'delivered'
              AND r.completed_at BETWEEN tg.window_start AND tg.ordered_at
              -- A message is created before it is delivered: prunes later months' partitions.
              AND r.job_created_at <= tg.ordered_at
              AND j.tenant_id = tg.tenant_id
            ORDER BY r.completed_at DESC, r.job_id DESC, r.seq DESC
            LIMIT 1
        ) last ON true
        -- Only what changed is written: most orders have no message to credit, and the sweep
        -- passes over the same orders many times.
        WHERE (tg.attributed_job_id, tg.attributed_seq) IS DISTINCT FROM (last.job_id, last.seq)
    ),
    locked AS (
        -- An order being stored right now is attributed by its own intake: the sweep neither
        -- waits for it nor, holding rows of its own, can deadlock with it.
        SELECT c.tenant_id, c.order_number, c.job_id, c.seq
        FROM changed c JOIN orders o ON o.tenant_id = c.tenant_id AND o.order_number = c.order_number
        FOR UPDATE OF o SKIP LOCKED
    )
    UPDATE orders o
    SET attributed_job_id = l.job_id, attributed_seq = l.seq, attributed_at = %(now)s
    FROM locked l
    WHERE o.tenant_id = l.tenant_id AND o.order_number = l.order_number
"""


def attribute_orders(
    conn: Connection,
    now: datetime,
    *,
    tenant_id: int | None = None,
    order_numbers: Sequence[str] | None = None,
    ordered_since: datetime | None = None,
    ordered_before: datetime | None = None,
) -> int:
    """Attribute the orders selected (a tenant's ``order_numbers``, the orders placed in
    ``[ordered_since, ordered_before)``, or all); returns how many orders' attribution changed."""
    conditions: list[sql.Composable] = []
    params: dict[str, object] = {"now": now}
    if tenant_id is not None:
        conditions.append(sql.SQL("o.tenant_id = %(tenant)s"))
        params["tenant"] = tenant_id
    if order_numbers is not None:
        conditions.append(sql.SQL("o.order_number = ANY(%(numbers)s)"))
        params["numbers"] = list(order_numbers)
    if ordered_since is not None:
        conditions.append(sql.SQL("o.ordered_at >= %(since)s"))
        params["since"] = ordered_since
    if ordered_before is not None:
        conditions.append(sql.SQL("o.ordered_at < %(before)s"))
        params["before"] = ordered_before
    selector = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")
    # JIT compiling costs seconds and buys nothing here: the work is index probes, not expressions.
    # SET LOCAL needs a transaction: the caller's, or this one.
    with conn.transaction():
        conn.execute("SET LOCAL jit = off")
        cursor = conn.execute(sql.SQL(_ATTRIBUTE).format(selector=selector), params)
    return cursor.rowcount


def reattribute_recent(
    conn: Connection,
    now: datetime,
    seconds: float = REATTRIBUTE_SECONDS,
    slice_seconds: float = SLICE_SECONDS,
) -> int:
    """The scheduler's sweep: attribute again every order placed in the last ``seconds``, one
    transaction per ``slice_seconds`` of order time, so no transaction holds many orders' locks
    for long; returns how many orders' attribution changed."""
    changed = 0
    start = now - timedelta(seconds=seconds)
    while start < now:
        end = min(now, start + timedelta(seconds=slice_seconds))
        # The last slice is open-ended: orders stamped a little ahead of our clock count too.
        changed += attribute_orders(conn, now, ordered_since=start, ordered_before=end if end < now else None)
        start = end
    return changed
