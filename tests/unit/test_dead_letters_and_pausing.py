"""Reading a dead-lettered message, and the failure-ratio rule that pauses a job."""

from __future__ import annotations

import orjson

from cli.dead_letters import parse
from engine.config import Settings
from engine.lifecycle.counters import JobCounts
from engine.lifecycle.pausing import failure_ratio_reason


def test_a_dead_letter_shows_queue_actor_job_batch_and_last_error_but_no_message_body() -> None:
    # Given a send_batch message dead-lettered from the delay queue, and a webhook one
    body = orjson.dumps(
        {
            "queue_name": "send.sms.DQ",
            "actor_name": "send_batch",
            "args": [42, 7],
            "kwargs": {},
            "options": {
                "retries": 5,
                "traceback": "Traceback ...\n  File x\npsycopg.DataError: bad batch\nCONTEXT:  parameter $4",
            },
            "message_id": "m1",
        }
    )
    webhook = orjson.dumps(
        {
            "queue_name": "reports",
            "actor_name": "apply_webhook",
            "args": ["nhn_sms", '{"recipientNo": "01012345678"}'],
            "options": {},
            "message_id": "m2",
        }
    )
    # When they are read
    letter, _ = parse(body)
    other, _ = parse(webhook)
    # Then the canonical queue, ids and last error line are shown; a body with phone numbers is not
    assert (letter.queue, letter.actor, letter.job_id, letter.batch, letter.attempts) == (
        "send.sms",
        "send_batch",
        42,
        7,
        6,  # the first attempt and 5 retries
    )
    assert letter.error == "psycopg.DataError: bad batch"
    assert (other.job_id, other.batch, other.error) == (None, None, "(no traceback)")
    assert "01012345678" not in repr(other)


def test_a_job_is_paused_only_past_the_ratio_and_the_minimum_sample_of_carrier_answers() -> None:
    settings = Settings(pause_failure_ratio=0.5, pause_min_sample=100)
    # Given 100 recipients refused at intake (never at the carrier) and 99 carrier answers
    small = JobCounts(total=1000, queued=801, failed=100 + 60, delivered=39, reasons={"too_short": 100})
    assert failure_ratio_reason(small, 100, settings) is None
    # When 100 are answered, 49 % failed: not paused
    under = JobCounts(total=1000, queued=800, failed=100 + 49, delivered=51)
    assert failure_ratio_reason(under, 100, settings) is None
    # When 100 are answered, 50 % failed: paused, saying why
    over = JobCounts(
        total=1000, queued=800, failed=100 + 50, delivered=50, reasons={"carrier_-2019": 50, "too_short": 100}
    )
    reason = failure_ratio_reason(over, 100, settings)
    assert reason is not None and reason.startswith(
        "50 of the 100 recipients the carrier answered failed (50%"
    )
    assert "most common: carrier_-2019" in reason  # not the intake refusals
    # And a ratio of 0 turns the check off
    assert failure_ratio_reason(over, 100, Settings(pause_failure_ratio=0.0, pause_min_sample=100)) is None
