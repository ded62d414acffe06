"""Counting what the pipeline did, a whole batch (or flush pass) at a time.

The hot paths call these once per carrier request or flush pass with totals they have already
computed, so the cost per recipient is nil; labels are bounded here (`metrics.labels`).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from datetime import datetime

from metrics import (
    INTAKE_TO_SUBMISSION_SECONDS,
    RECIPIENT_FAILURES,
    RECIPIENTS,
    RETRIES_SCHEDULED,
    SUBMISSION_TO_RESULT_SECONDS,
)
from metrics.histograms import observe_many, observe_n
from metrics.labels import carrier_of, reason

#: The carrier label of recipients refused before reaching a carrier.
NO_CARRIER = "none"


def count_failures(channel: str, carrier: str, reasons: Mapping[str, int]) -> None:
    """Failed recipients, ``reasons`` mapping reason code to count."""
    total = 0
    bounded: Tally[str] = Tally()
    for code, count in reasons.items():
        bounded[reason(code)] += count
        total += count
    if total:
        RECIPIENTS.labels(channel, carrier, "failed").inc(total)
    for label, count in bounded.items():
        RECIPIENT_FAILURES.labels(channel, carrier, label).inc(count)


def count_intake_failures(channel: str, reasons: Mapping[str, int]) -> None:
    """Recipients refused before reaching a carrier: at intake (bad number, missing variable),
    or a Kakao recipient whose fallback text cannot be sent."""
    count_failures(channel, NO_CARRIER, reasons)


def count_submission(
    channel: str,
    carrier: str,
    *,
    sent: int,
    delivered: int,
    fallbacks: int,
    reasons: Mapping[str, int] | None,
    intake_to_submission_seconds: float,
) -> None:
    """Outcomes of one carrier request: every recipient of it was submitted at the same moment."""
    if sent:
        RECIPIENTS.labels(channel, carrier, "submitted").inc(sent)
        observe_n(INTAKE_TO_SUBMISSION_SECONDS.labels(channel), intake_to_submission_seconds, sent)
    if delivered:
        RECIPIENTS.labels(channel, carrier, "delivered").inc(delivered)
    if fallbacks:
        RECIPIENTS.labels(channel, carrier, "fallback").inc(fallbacks)
    if reasons:
        count_failures(channel, carrier, reasons)


def count_expired(channel: str, count: int) -> None:
    if count:
        RECIPIENTS.labels(channel, carrier_of(channel), "expired").inc(count)


def count_report_results(
    changes: Iterable[tuple[str | None, str, str | None, datetime | None, datetime | None]],
) -> None:
    """Final results a flush pass applied from delivery reports, as (channel, status, reason code,
    submitted at, result at) of each row that changed (a duplicate report changes none)."""
    outcomes: Tally[tuple[str, str]] = Tally()
    failures: dict[str, Tally[str]] = {}
    latencies: dict[str, list[float]] = {}
    for channel, status, code, submitted_at, result_at in changes:
        channel = channel or "sms"
        outcomes[(channel, status)] += 1
        if status == "failed":
            failures.setdefault(channel, Tally())[code or "other"] += 1
        if submitted_at is not None and result_at is not None and status != "queued":
            latencies.setdefault(channel, []).append((result_at - submitted_at).total_seconds())
    for (channel, status), count in outcomes.items():
        if status == "queued":
            # A passing failure ("phone off"): the recipient is sent again.
            RETRIES_SCHEDULED.labels(channel).inc(count)
        elif status != "failed":
            RECIPIENTS.labels(channel, carrier_of(channel), status).inc(count)
    for channel, reasons in failures.items():
        count_failures(channel, carrier_of(channel), reasons)
    for channel, values in latencies.items():
        observe_many(SUBMISSION_TO_RESULT_SECONDS.labels(channel), values)
