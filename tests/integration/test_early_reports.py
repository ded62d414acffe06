"""A carrier's report read before the worker's record of the submission is applied (the worker
was slow to record it, or died first) waits for it on the result stream, rather than being
dropped as a report about a recipient never sent (`engine.lifecycle.flusher.EarlyReport`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from carriers.base import Outcome, SubmitOutcome
from engine.accounts.tenants import create_tenant
from engine.clock import SystemClock
from engine.config import Settings
from engine.keys import Keys
from engine.lifecycle import flusher as flusher_module
from engine.lifecycle.flusher import Flusher
from engine.lifecycle.results import RecipientOutcome, ResultRecorder
from engine.redis_client import make_redis
from tests.support.results import seed_job

pytestmark = pytest.mark.integration


class Queued:
    """A seeded job whose recipient 0 is an SMS still queued (its submission not recorded)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(f"early-{uuid.uuid4().hex[:8]}")
        self.redis = make_redis(settings.redis_url)
        self.recorder = ResultRecorder(self.redis, self.keys)
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            self.job_id = seed_job(conn, create_tenant(conn, f"early-{uuid.uuid4().hex[:6]}"))
            self.created: datetime = conn.execute(
                "SELECT created_at FROM jobs WHERE id = %s", (self.job_id,)
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "UPDATE recipients SET status = 'queued', channel = 'sms', attempt = 0, submitted_at = NULL,"
                " completed_at = NULL, reason_code = NULL, reason_text = NULL"
                " WHERE job_id = %s AND job_created_at = %s AND seq = 0",
                (self.job_id, self.created),
            )

    def report_delivered(self) -> None:
        report = SubmitOutcome(f"{self.job_id}-0", Outcome.DELIVERED, "1000", "ok", "r:0", datetime.now(UTC))
        self.recorder.record_reports([RecipientOutcome(self.job_id, 0, report)], carrier="nhn_sms")

    def record_submission(self) -> None:
        accepted = SubmitOutcome(f"{self.job_id}-0", Outcome.ACCEPTED, "0", "accepted", "r:0")
        self.recorder.record_submission(
            job_id=self.job_id,
            job_created_at=self.created,
            batch_seq=0,
            outcomes=[(0, accepted)],
            batch_done=False,
            at=datetime.now(UTC),
        )

    def status(self) -> str:
        with psycopg.connect(self.settings.database_url) as conn:
            row = conn.execute(
                "SELECT status FROM recipients WHERE job_id = %s AND job_created_at = %s AND seq = 0",
                (self.job_id, self.created),
            ).fetchone()
        assert row is not None
        return str(row[0])

    def waiting_reports(self) -> list[dict[str, object]]:
        """Report entries on the stream not yet read by the flusher."""
        return [orjson.loads(fields[b"d"]) for _, fields in self.redis.xrange(self.keys.results)]


@pytest.fixture
def queued(settings: Settings) -> Iterator[Queued]:
    job = Queued(settings)
    yield job
    for key in job.redis.scan_iter(match=f"{job.keys.prefix}:*"):
        job.redis.delete(key)
    job.redis.close()


def test_a_report_before_its_submission_waits_for_it_and_then_applies(
    settings: Settings, queued: Queued
) -> None:
    with ConnectionPool(settings.database_url, min_size=1, max_size=2) as pool:
        flusher = Flusher(pool, queued.redis, queued.keys, "test", settings=settings, clock=SystemClock())
        # Given the carrier's delivery report, read before the worker recorded the submission
        queued.report_delivered()

        # When the flusher applies it: nothing changes, and the report goes back on the stream,
        # marked with when it was first found early
        flusher.flush_once()
        assert queued.status() == "queued"
        (waiting,) = queued.waiting_reports()
        assert waiting["t"] == "report" and waiting["c"] == "nhn_sms" and len(waiting["r"]) == 1  # type: ignore[arg-type]
        first_found = waiting["e"]
        flusher.flush_once()
        assert queued.waiting_reports()[0]["e"] == first_found

        # When the submission is recorded after all, the next passes apply it, then the report
        queued.record_submission()
        flusher.flush_once()
        flusher.flush_once()
    assert queued.status() == "delivered"
    assert queued.waiting_reports() == []


def test_a_report_that_waited_too_long_is_left_to_the_report_deadline(
    settings: Settings, queued: Queued, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ConnectionPool(settings.database_url, min_size=1, max_size=2) as pool:
        flusher = Flusher(pool, queued.redis, queued.keys, "test", settings=settings, clock=SystemClock())
        # Given a report whose submission never comes (its worker died; its batch is reconciled)
        monkeypatch.setattr(flusher_module, "EARLY_REPORT_PATIENCE_SECONDS", 0.2)
        queued.report_delivered()
        flusher.flush_once()
        assert len(queued.waiting_reports()) == 1

        # When it has waited past the patience, the next pass leaves it
        time.sleep(0.3)
        flusher.flush_once()
    assert queued.waiting_reports() == []
    assert queued.status() == "queued"
