"""Cancelling a running job: what was submitted stays and is reported, nothing new goes out,
and the job ends ``cancelled`` with counts that add up (Redis agrees with PostgreSQL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from redis import Redis

from api.console.routes import _can_cancel
from api.console.session import ConsoleSession
from engine.accounts.tenants import Principal, create_tenant, tenant_id_by_name
from engine.config import Settings
from engine.dispatch.cancel import cancel_job
from engine.dispatch.planning import plan_job
from engine.dispatch.rate_policy import set_rate_limit
from engine.errors import JobStateConflict
from engine.intake.intake import prepare_job
from engine.keys import Keys
from engine.lifecycle import counters
from engine.lifecycle.statuses import JobStatus
from engine.reporting.statement import job_statement
from tests.integration.test_reservations import wait_status
from tests.support.results import seed_job
from tests.support.stack import SENDER, Stack
from tests.support.stored_jobs import store_prepared

pytestmark = pytest.mark.integration


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_a_running_job_stops_submitting_and_ends_cancelled_with_counts_that_add_up(stack: Stack) -> None:
    # Given a tenant held to 100 recipients/s, a carrier that asks for some to be tried again
    # later (so retry batches wait in the ledger), and a 3,000-recipient job under way
    client = stack.new_tenant("cancel-running")
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        set_rate_limit(conn, tenant_id_by_name(conn, "cancel-running"), "sms", 100.0)
    stack.simulator.configure(reject_mix={"-9999": 0.2}, seed=7)
    try:
        recipients = [{"phone": f"010{60_000_000 + i:08d}"} for i in range(3000)]
        response = client.post(
            "/v1/jobs",
            json={"channel": "sms", "sender": SENDER, "body": "취소 시험", "recipients": recipients},
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        deadline = time.monotonic() + 60
        while stack.job(client, job_id)["counts"]["sent"] < 300 and time.monotonic() < deadline:
            time.sleep(0.1)

        # When it is cancelled
        cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["finished"] is False
        job = wait_status(stack, client, job_id, "cancelled")
        deadline = time.monotonic() + 60
        while job["completed_at"] is None and time.monotonic() < deadline:
            time.sleep(0.2)
            job = stack.job(client, job_id)
    finally:
        stack.simulator.configure(reject_mix={})

    # Then it ended cancelled: some recipients went out, the rest were never submitted
    assert job["status"] == "cancelled" and job["completed_at"] is not None, job
    counts = job["counts"]
    assert counts["queued"] == 0 and counts["in_flight"] == 0
    assert counts["delivered"] + counts["failed"] + counts["expired"] + counts["cancelled"] == 3000
    assert 300 <= counts["sent"] < 3000 and counts["cancelled"] > 0
    # ... the carrier saw exactly the recipients counted as sent, each once
    seen = stack.submissions(job_id)
    assert len(seen) == counts["sent"] and set(seen.values()) == {1}
    # ... the live counters equal a recount from PostgreSQL (what `balsong recount` computes)
    with psycopg.connect(stack.settings.database_url) as conn:
        row = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (job_id,)).fetchone()
        assert row is not None
        recounted = counters.recount(conn, job_id, row[0])
        unfinished = conn.execute(
            "SELECT count(*) FROM batches WHERE job_id = %s AND state <> 'recorded'", (job_id,)
        ).fetchone()
        retry_batches = conn.execute(
            "SELECT count(*) FROM batches WHERE job_id = %s AND seqs IS NOT NULL", (job_id,)
        ).fetchone()
    live = counters.read(Redis.from_url(stack.settings.redis_url), Keys(stack.settings.redis_prefix), job_id)
    assert live is not None
    for name in counters.COUNT_FIELDS:
        assert getattr(live, name) == getattr(recounted, name), name
    # ... and every batch, retry batches included, is done: none is left waiting
    assert unfinished == (0,) and retry_batches is not None and retry_batches[0] > 0
    page = client.get(f"/v1/jobs/{job_id}/recipients", params={"status": "cancelled", "limit": 3}).json()
    assert {r["reason_code"] for r in page["recipients"]} == {"cancelled"}
    # And cancelling again changes nothing
    assert client.post(f"/v1/jobs/{job_id}/cancel").json()["cancelled_at"] == cancelled.json()["cancelled_at"]


def test_a_job_cancelled_before_it_was_planned_is_never_planned(stack: Stack) -> None:
    # Given a job stored but not yet planned (its plan_job message still to come)
    client = stack.new_tenant("cancel-unplanned")
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        tenant_id = tenant_id_by_name(conn, "cancel-unplanned")
        prepared = prepare_job(
            {"channel": "sms", "sender": SENDER, "body": "x", "recipients": [{"phone": "01061000001"}]},
            max_recipients=10,
        )
        stored = store_prepared(conn, stack.settings, tenant_id, prepared)
    # When it is cancelled, and plan_job then runs
    response = client.post(f"/v1/jobs/{stored.job_id}/cancel")
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        planned = plan_job(conn, stored.job_id, batch_size=1000, window=32)
        batches = conn.execute("SELECT count(*) FROM batches WHERE job_id = %s", (stored.job_id,)).fetchone()
    # Then it ended at once, planning made no batch, and its recipient is cancelled
    assert response.status_code == 200 and response.json()["finished"] is True
    assert planned == [] and batches == (0,)
    job = stack.job(client, stored.job_id)
    assert job["status"] == "cancelled" and job["counts"]["cancelled"] == 1


def test_the_console_offers_cancel_exactly_where_the_engine_accepts_it(settings: Settings) -> None:
    # Given one job, put in each status in turn, and a console session that may send
    with psycopg.connect(settings.database_url) as conn:
        tenant_id = create_tenant(conn, "cancel-button")
        job_id = seed_job(conn, tenant_id)
        session = ConsoleSession(Principal(tenant_id, 0, frozenset({"send", "read"})), "csrf")
        for status in JobStatus:
            conn.execute("UPDATE jobs SET status = %s, completed_at = NULL WHERE id = %s", (status, job_id))
            # When the engine is asked to cancel it, and the console asked whether to offer it
            try:
                with conn.transaction(force_rollback=True):
                    cancel_job(conn, tenant_id, job_id, datetime.now(UTC))
                engine_accepts = True
            except JobStateConflict:
                engine_accepts = False
            # Then both answer alike (a job already cancelled is accepted again, changing nothing,
            # but there is nothing left for the button to do)
            offered = _can_cancel({"status": status}, session)
            assert offered == (engine_accepts and status != JobStatus.CANCELLED), status
        conn.rollback()


def test_a_cancelled_job_adds_up_to_its_total_in_history_statement_and_export(stack: Stack) -> None:
    # Given a reservation of three recipients (and one refused number), cancelled before it goes
    client = stack.new_tenant("cancel-adds-up")
    when = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": "취소될 예약",
            "scheduled_at": when,
            "recipients": [
                {"phone": p} for p in ("010-7100-0001", "010-7100-0002", "010-7100-0003", "010-12")
            ],
        },
    )
    assert response.status_code == 202, response.text
    job_id = int(response.json()["job_id"])
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    # When each view of it is read
    listed = next(j for j in client.get("/v1/jobs").json()["jobs"] if j["id"] == job_id)
    export = client.get(f"/v1/jobs/{job_id}/export", params={"format": "csv"}).content.decode("utf-8-sig")
    with psycopg.connect(stack.settings.database_url) as conn:
        statement = job_statement(conn, tenant_id_by_name(conn, "cancel-adds-up"), job_id, datetime.now(UTC))
    # Then the cancelled recipients are shown and counted in each, and every view adds up to 4
    counts = listed["counts"]
    assert counts["cancelled"] == 3 and counts["failed"] == 1
    parts = ("queued", "in_flight", "delivered", "failed", "expired", "cancelled")
    assert sum(counts[name] for name in parts) == counts["total"] == 4
    assert statement.totals.cancelled == 3 and statement.totals.total == 4
    assert export.count("취소") == 3 and len(export.strip().splitlines()) == 1 + 4
