"""Counting what the pipeline did, a whole batch (or flush pass) at a time.

The hot paths call these once per carrier request or flush pass with totals they have already
computed, so the cost per recipient is nil. Labels are bounded here: a reason code becomes a
label only if balsong or a provider published it (`reason`), the rest is ``other``.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from functools import partial
from operator import attrgetter, is_not
from typing import Final, Protocol

from carriers import nhn_alimtalk_codes, nhn_sms_codes
from metrics import (
    INTAKE_TO_SUBMISSION_SECONDS,
    RECIPIENT_FAILURES,
    RECIPIENTS,
    RETRIES_SCHEDULED,
    SUBMISSION_TO_RESULT_SECONDS,
)
from metrics.histograms import observe_many, observe_n
from metrics.labels import OTHER, carrier_of

#: balsong's own reason codes (intake refusals, opt-outs, expiry, cancellation) besides the
#: carriers' ``carrier_<code>``.
OWN_REASONS: Final[frozenset[str]] = frozenset(
    {
        "expired",
        "no_report",
        "opted_out",
        "cancelled",
        "reservation_missed",
        "empty",
        "invalid_character",
        "invalid_phone",
        "not_korean",
        "unknown_prefix",
        "too_short",
        "too_long",
        "sender_only",
        "missing_variable",
        "unencodable_text",
        "content_too_long",
    }
)

#: Every reason code a failure may carry: ours and the providers' published codes.
KNOWN_REASONS: Final[frozenset[str]] = OWN_REASONS | frozenset(
    f"carrier_{code}"
    for module in (nhn_sms_codes, nhn_alimtalk_codes)
    for code in (*map(str, module.API_CODES), *module.RESULT_CODES)
)


def reason(code: str | None) -> str:
    """A failure's reason code as a label: a published or balsong code, else ``other``."""
    return code if code in KNOWN_REASONS else OTHER


class ReportResult(Protocol):
    """A recipient row a delivery report changed (`engine.lifecycle.flusher.ReportChange`)."""

    @property
    def channel(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def code(self) -> str | None: ...
    @property
    def latency_seconds(self) -> float | None: ...


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


def count_unknown(channel: str, count: int) -> None:
    """Recipients ended ``unknown``: no result by their channel's report deadline."""
    if count:
        RECIPIENTS.labels(channel, carrier_of(channel), "unknown").inc(count)


def count_report_results(changes: Sequence[ReportResult]) -> None:
    """Final results a flush pass applied from delivery reports: the rows that changed (a
    duplicate report changes none), each with its seconds from submission to result.

    The passes over the rows (``map``, ``Counter``, ``filter``) run in C; the Python loops below
    go over the few distinct (channel, status, code) triples and channels.
    """
    channels: set[str] = set()
    failures: dict[str, Tally[str]] = {}
    for (channel, status, code), count in Tally(map(_CHANNEL_STATUS_CODE, changes)).items():
        channel = channel or "sms"
        channels.add(channel)
        if status == "queued":
            # A passing failure ("phone off"): the recipient is sent again.
            RETRIES_SCHEDULED.labels(channel).inc(count)
        elif status == "failed":
            failures.setdefault(channel, Tally())[code or OTHER] += count
        else:
            RECIPIENTS.labels(channel, carrier_of(channel), status).inc(count)
    for channel, reasons in failures.items():
        count_failures(channel, carrier_of(channel), reasons)
    # Rows sent again have no latency (their submission was cleared).
    if len(channels) == 1:
        (channel,) = channels
        observe_many(SUBMISSION_TO_RESULT_SECONDS.labels(channel), filter(_is_set, map(_LATENCY, changes)))
        return
    for channel in channels:
        observe_many(
            SUBMISSION_TO_RESULT_SECONDS.labels(channel),
            [
                c.latency_seconds
                for c in changes
                if (c.channel or "sms") == channel and c.latency_seconds is not None
            ],
        )


_CHANNEL_STATUS_CODE = attrgetter("channel", "status", "code")
_LATENCY = attrgetter("latency_seconds")
_is_set = partial(is_not, None)
