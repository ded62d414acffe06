"""The rules of :class:`carriers.base.Carrier`, tested against every implementation.

A test module subclasses :class:`CarrierContract` and provides a ``carrier`` fixture whose
provider accepts valid numbers, refuses :attr:`CarrierContract.INVALID_PHONE` per recipient, and
reaches final results within :attr:`CarrierContract.FINAL_WITHIN_SECONDS`. A carrier of another
channel than SMS sets :attr:`CarrierContract.CHANNEL` and overrides
:meth:`CarrierContract.batch_of` (and the LMS test, which is SMS/LMS-specific).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from carriers.base import (
    Batch,
    Carrier,
    Channel,
    Outcome,
    Recipient,
    SubmitOutcome,
    all_reports,
    request_id_of,
)

T = TypeVar("T")

FINAL = (Outcome.DELIVERED, Outcome.FAILED)


def references(count: int, prefix: str | None = None) -> list[str]:
    """``count`` references unique to this call."""
    stem = prefix or uuid.uuid4().hex[:10]
    return [f"{stem}-{i}" for i in range(count)]


def phone(i: int) -> str:
    return f"010{i:08d}"


def sms_batch(refs: list[str], body: str = "balsong contract test") -> Batch:
    recipients = [Recipient(reference, phone(i)) for i, reference in enumerate(refs)]
    return Batch(Channel.SMS, "15446859", body, recipients)


def eventually(probe: Callable[[], T | None], within_seconds: float, every_seconds: float = 0.05) -> T:
    """Call ``probe`` until it returns something truthy, for at most ``within_seconds``."""
    deadline = time.monotonic() + within_seconds
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing came within {within_seconds} s")
        time.sleep(every_seconds)


def by_reference(outcomes: list[SubmitOutcome]) -> dict[str, SubmitOutcome]:
    return {o.reference: o for o in outcomes}


class CarrierContract:
    """Mixin: every test here must pass for every carrier."""

    #: A number the provider refuses at submission.
    INVALID_PHONE = "12"
    #: Longest time from acceptance to a final result in the test provider, in seconds.
    FINAL_WITHIN_SECONDS = 5.0
    #: The channel of the contract's batches.
    CHANNEL = Channel.SMS

    def batch_of(self, recipients: list[Recipient]) -> Batch:
        """A batch of ``recipients`` on :attr:`CHANNEL`, as this carrier sends it."""
        return Batch(Channel.SMS, "15446859", "balsong contract test", recipients)

    def batch(self, refs: list[str]) -> Batch:
        """A batch of one recipient per reference, numbered by :func:`phone`."""
        return self.batch_of([Recipient(reference, phone(i)) for i, reference in enumerate(refs)])

    def test_submit_answers_once_for_every_recipient(self, carrier: Carrier) -> None:
        """Given a batch of 50, when submitted, then each recipient has exactly one outcome,
        accepted with the provider's id."""
        refs = references(50)

        outcomes = carrier.submit(self.batch(refs))

        assert sorted(o.reference for o in outcomes) == sorted(refs)
        assert all(o.outcome is Outcome.ACCEPTED and o.carrier_id for o in outcomes)

    def test_empty_batch_is_no_request(self, carrier: Carrier) -> None:
        """Given no recipients, when submitted, then nothing is answered."""
        assert carrier.submit(self.batch([])) == []

    def test_lms_batch_is_accepted(self, carrier: Carrier) -> None:
        """Given an LMS batch with a title, when submitted, then every recipient is accepted."""
        refs = references(3)
        batch = Batch(
            Channel.LMS,
            "15446859",
            "a longer text " * 20,
            [Recipient(r, phone(i)) for i, r in enumerate(refs)],
            "title",
        )

        outcomes = carrier.submit(batch)

        assert {o.outcome for o in outcomes} == {Outcome.ACCEPTED}
        assert len(outcomes) == 3

    def test_refused_recipient_is_an_outcome_not_an_exception(self, carrier: Carrier) -> None:
        """Given one invalid number among valid ones, when submitted, then it alone is failed."""
        refs = references(3)
        batch = self.batch_of(
            [
                Recipient(refs[0], phone(0)),
                Recipient(refs[1], self.INVALID_PHONE),
                Recipient(refs[2], phone(2)),
            ]
        )

        outcomes = by_reference(carrier.submit(batch))

        assert outcomes[refs[1]].outcome is Outcome.FAILED
        assert outcomes[refs[1]].code not in ("", "0")
        assert outcomes[refs[0]].outcome is outcomes[refs[2]].outcome is Outcome.ACCEPTED

    def test_lookup_finds_what_was_accepted_and_omits_the_unknown(self, carrier: Carrier) -> None:
        """Given two accepted references, when looked up with one never sent, then the two are
        found and the third is absent."""
        since = datetime.now(UTC) - timedelta(seconds=1)
        refs = references(2)
        carrier.submit(self.batch(refs))

        found = by_reference(carrier.lookup(self.CHANNEL, [*refs, "never-sent-" + uuid.uuid4().hex], since))

        assert set(found) == set(refs)
        assert all(o.outcome in (Outcome.ACCEPTED, *FINAL) for o in found.values())

    def test_lookup_by_request_finds_every_recipient_the_requests_carried(self, carrier: Carrier) -> None:
        """Given two requests accepted, when looked up by the request ids their carrier ids name,
        then every recipient of both is found, once, and nothing else."""
        first, second = references(3), references(2)
        accepted = [*carrier.submit(self.batch(first)), *carrier.submit(self.batch(second))]
        request_ids = {request_id_of(o.carrier_id) for o in accepted}
        assert None not in request_ids and len(request_ids) == 2

        found = carrier.lookup_requests(self.CHANNEL, sorted(rid for rid in request_ids if rid))

        assert sorted(o.reference for o in found) == sorted([*first, *second])
        assert all(o.outcome in (Outcome.ACCEPTED, *FINAL) for o in found)

    def test_reports_list_final_results_within_the_window(self, carrier: Carrier) -> None:
        """Given accepted recipients, when their results arrive, then reports list each once as
        delivered or failed with a result time inside the window asked for."""
        since = datetime.now(UTC) - timedelta(seconds=1)
        refs = references(20)
        carrier.submit(self.batch(refs))

        def all_reported() -> list[SubmitOutcome] | None:
            until = datetime.now(UTC)
            mine = [o for o in all_reports(carrier, self.CHANNEL, since, until) if o.reference in set(refs)]
            for outcome in mine:
                assert outcome.outcome in FINAL
                assert outcome.result_at is not None and since <= outcome.result_at < until
            return mine if len(mine) == len(refs) else None

        reported = eventually(all_reported, self.FINAL_WITHIN_SECONDS)

        assert sorted(o.reference for o in reported) == sorted(refs)

    def test_reports_before_anything_was_sent_are_empty(self, carrier: Carrier) -> None:
        """Given references sent now, when reports cover only an earlier window, then they are
        not listed."""
        refs = references(3)
        carrier.submit(self.batch(refs))
        earlier = datetime.now(UTC) - timedelta(hours=1)

        listed = all_reports(carrier, self.CHANNEL, earlier - timedelta(minutes=5), earlier)

        assert not {o.reference for o in listed} & set(refs)
