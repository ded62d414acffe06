"""The protocol every carrier adapter implements.

A carrier receives one *batch*: up to 1000 recipients of one job on one channel, sharing one
sender and one message template. Each recipient carries our stable reference (unique per
recipient and channel, e.g. ``"j42-17"``), which the carrier echoes back in results and lets us
search by; that is how an unknown outcome is reconciled instead of resent.

Contract (tested against every implementation by ``tests/carriers/contract.py``):

- ``submit`` sends the batch in as few provider requests as the provider allows and returns one
  :class:`SubmitOutcome` per recipient, in any order. A per-recipient refusal is an outcome, not
  an exception.
- ``submit`` raises :class:`~engine.errors.CarrierRetryable` only when nothing was accepted,
  :class:`~engine.errors.CarrierOutcomeUnknown` when a request left and its answer did not come
  back, and :class:`~engine.errors.CarrierRejected` when the provider refused the whole request
  for good. When a batch needs several provider requests and one fails midway, the outcomes of
  the requests that did succeed are not lost: the exception carries them in its ``partial`` attribute.
- ``lookup`` finds what the carrier knows of the given references (accepted, delivered or
  failed); a reference it never accepted is simply absent from the answer.
- ``reports`` lists final results whose result time lies in ``[since, until)``: the poller's
  way to learn delivery results that arrive after the submit response.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol


class Channel(enum.StrEnum):
    SMS = "sms"
    LMS = "lms"
    #: KakaoTalk AlimTalk (an approved template, filled per recipient).
    KAKAO = "kakao"


class Outcome(enum.StrEnum):
    """What a carrier says of one recipient."""

    #: Accepted for delivery; the final result comes later (report or lookup).
    ACCEPTED = "accepted"
    #: Delivered to the handset (final).
    DELIVERED = "delivered"
    #: Failed for good (final): bad number, blocked, refused.
    FAILED = "failed"
    #: Not accepted this time for a passing reason (throttled, busy); may be submitted again.
    RETRY = "retry"


class Recipient(NamedTuple):
    """One recipient of a batch (a tuple: thousands are built per second)."""

    #: Our stable reference for this recipient on this channel; sent as the provider's
    #: per-recipient grouping key and echoed back in results.
    reference: str
    #: Normalised domestic number, digits only (``01012345678``).
    phone: str
    #: Values for the template's variables, in the order of ``Batch.variables``.
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Batch:
    """Up to 1000 recipients sharing a channel, a sender and a message template."""

    channel: Channel
    #: Registered sender number, digits only.
    sender: str
    #: Message body; ``#{name}`` placeholders are filled per recipient from ``values``.
    body: str
    recipients: Sequence[Recipient]
    #: LMS title (not used by SMS).
    title: str | None = None
    #: Names of the body's variables, in the order recipients' ``values`` follow.
    variables: tuple[str, ...] = ()
    #: Stable for this batch and attempt; sent where the provider supports idempotency keys.
    idempotency_key: str = ""
    #: KakaoTalk: the approved template's code (``body`` is then the template's text).
    template_code: str | None = None


class SubmitOutcome(NamedTuple):
    """What the carrier said of one recipient, at submission or later (a tuple: thousands are
    built per second)."""

    reference: str
    outcome: Outcome
    #: The provider's result code, as text (``"0"``, ``"1000"``, ``"-1001"`` ...).
    code: str
    #: The provider's result message, or ours when the provider gives none.
    message: str
    #: The provider's identifier of this recipient's message, e.g. ``"<requestId>:<recipientSeq>"``.
    carrier_id: str | None = None
    #: When the provider reached a final result (``DELIVERED`` / ``FAILED`` from reports).
    result_at: datetime | None = None


#: How far one outcome is along, to keep the most advanced where a carrier holds several
#: messages for one reference (a resubmission).
OUTCOME_RANK = {Outcome.DELIVERED: 3, Outcome.ACCEPTED: 2, Outcome.FAILED: 1, Outcome.RETRY: 0}


def most_advanced(outcomes: Iterable[SubmitOutcome]) -> list[SubmitOutcome]:
    """One outcome per reference: the most advanced (`OUTCOME_RANK`), in first-seen order."""
    best: dict[str, SubmitOutcome] = {}
    for outcome in outcomes:
        seen = best.get(outcome.reference)
        if seen is None or OUTCOME_RANK[outcome.outcome] > OUTCOME_RANK[seen.outcome]:
            best[outcome.reference] = outcome
    return list(best.values())


def all_reports(carrier: Carrier, channel: Channel, since: datetime, until: datetime) -> list[SubmitOutcome]:
    """Every page of `Carrier.report_pages`, as one list."""
    return [outcome for page in carrier.report_pages(channel, since, until) for outcome in page]


def request_id_of(carrier_id: str | None) -> str | None:
    """The carrier request an accepted recipient went in, from its ``carrier_id``
    (``"<requestId>:<recipientSeq>"`` for every adapter)."""
    if not carrier_id:
        return None
    request_id, separator, _ = carrier_id.rpartition(":")
    return request_id if separator and request_id and request_id != "None" else None


class Carrier(Protocol):
    """A provider API able to send a batch and tell what became of each recipient."""

    #: Short name used in metrics and settings (``"nhn_sms"``).
    name: str

    def submit(self, batch: Batch) -> list[SubmitOutcome]:
        """Send ``batch``; return one outcome per recipient.

        Raises:
          CarrierRetryable: nothing was accepted; safe to send again.
          CarrierOutcomeUnknown: a request left without an answer; reconcile with ``lookup``.
          CarrierRejected: the provider refused the whole request for good.
        """
        ...

    def lookup(self, channel: Channel, references: Sequence[str], since: datetime) -> list[SubmitOutcome]:
        """What the carrier knows of ``references`` submitted at or after ``since``."""
        ...

    def lookup_requests(self, channel: Channel, request_ids: Sequence[str]) -> list[SubmitOutcome]:
        """Every recipient of the carrier's requests ``request_ids`` (the ids it gave when it
        accepted them, see `request_id_of`), the most advanced outcome per reference: a page of
        a thousand recipients per query, where `lookup` asks one reference per query."""
        ...

    def report_pages(
        self, channel: Channel, since: datetime, until: datetime
    ) -> Iterator[list[SubmitOutcome]]:
        """Final results (delivered or failed) reached in ``[since, until)``, a page of the
        provider's answers at a time: the poller queues each page while the next is fetched."""
        ...

    def close(self) -> None:
        """Release pooled connections."""
        ...
