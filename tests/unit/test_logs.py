"""JSON log lines and the phone-number mask that is their last line of defence."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

import pytest

from engine.logs import JsonFormatter, MaskPhones, mask_phones


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to 01012345678 now", "to 010-****-5678 now"),
        ("to 010-1234-5678", "to 010-****-5678"),
        ("to 010.1234.5678", "to 010-****-5678"),
        ("to 010 1234 5678", "to 010-****-5678"),
        ("to +82 10-1234-5678", "to 010-****-5678"),
        ("to +821012345678", "to 010-****-5678"),
        ("to 0082-10-1234-5678", "to 010-****-5678"),
        ("to +82 (0)10 1234 5678", "to 010-****-5678"),
        ("old 011-123-4567", "old 011-***-4567"),
        ("Seoul 02-123-4567 and 0212345678", "Seoul 02-***-4567 and 02-****-5678"),
        ("Busan (051) 234-5678", "Busan (051-***-5678"),
        ("internet 070-1234-5678", "internet 070-****-5678"),
        ("safe 0504-1234-5678", "safe 0504-****-5678"),
        ("Key (phone)=(01099998888) already exists", "Key (phone)=(010-****-8888) already exists"),
        ('{"recipientNo": "01011112222"}', '{"recipientNo": "010-****-2222"}'),
    ],
)
def test_korean_numbers_in_any_writing_are_masked(text: str, masked: str) -> None:
    """Given a text with a Korean phone number written one of the usual ways
    When it is masked
    Then only the prefix and the last four digits remain."""
    assert mask_phones(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "job 1234567 batch 12",
        "2026-11-23T13:39:05.123+00:00",
        "request 20261123133905010123456789",
        "reference 42-17-0, carrier id 20261123:1",
        "took 0.0123456 s",
        "already masked 010-****-5678",
        "code -2019, result 3015",
    ],
)
def test_text_without_a_phone_number_is_left_alone(text: str) -> None:
    """Given ids, times, codes and durations
    When they are masked
    Then nothing changes (no digits inside a longer run are taken for a number)."""
    assert mask_phones(text) == text


def _emit(logger_name: str, log: Callable[[logging.Logger], None]) -> dict[str, object]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskPhones())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        log(logger)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    return dict(json.loads(lines[0]))


def test_a_record_is_one_json_line_with_its_extras() -> None:
    """Given a log call with job and batch ids in ``extra``
    When it goes through the JSON formatter
    Then the line is one JSON object with time, level, logger, message and both ids."""
    record = _emit("test.json", lambda log: log.info("batch sent", extra={"job_id": 7, "batch_id": 3}))

    assert record["message"] == "batch sent"
    assert record["level"] == "INFO"
    assert record["logger"] == "test.json"
    assert record["job_id"] == 7 and record["batch_id"] == 3
    assert str(record["ts"]).endswith("+00:00")


def test_numbers_in_arguments_extras_and_exceptions_are_masked() -> None:
    """Given a number in a %-argument, a string extra and an exception's message
    When the record is logged
    Then the line holds none of it unmasked."""

    def log(logger: logging.Logger) -> None:
        try:
            raise ValueError("carrier said: 01055556666 is blocked")
        except ValueError:
            logger.exception("failed for %s", "010-5555-6666", extra={"error": "+82 10 5555 6666"})

    record = _emit("test.mask", log)
    line = json.dumps(record, ensure_ascii=False)

    assert "5555" not in line
    assert record["message"] == "failed for 010-****-6666"
    assert record["error"] == "010-****-6666"
    assert "010-****-6666 is blocked" in str(record["exc"])
