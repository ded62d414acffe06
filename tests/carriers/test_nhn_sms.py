"""NhnSmsCarrier against the simulator, a real NHN SMS v3.0 API over HTTP."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from carriers.base import Batch, Channel, Outcome, Recipient, SubmitOutcome, all_reports
from carriers.errors import CarrierOutcomeUnknown, CarrierRejected, CarrierRetryable
from carriers.nhn_sms import NhnSmsCarrier
from carriers.simulator.behaviour import FINAL, REJECT, draw, fraction
from carriers.simulator.behaviour import NO_REPORT as NO_REPORT_SALT
from tests.carriers.contract import CarrierContract, by_reference, eventually, phone, references, sms_batch
from tests.support.simulator import SimulatorHandle, free_port, running_simulator

#: The result delay the suite runs with, in milliseconds: short, but long enough to see
#: "accepted, not yet final".
RESULT_DELAY_MS = 300


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with running_simulator(result_delay_ms=RESULT_DELAY_MS) as handle:
        yield handle


@pytest.fixture
def sim(simulator: SimulatorHandle) -> Iterator[SimulatorHandle]:
    simulator.reset()
    yield simulator


@pytest.fixture
def carrier(sim: SimulatorHandle) -> Iterator[NhnSmsCarrier]:
    with NhnSmsCarrier(sim.url, sim.app_key, sim.secret_key, timeout_seconds=2.0) as adapter:
        yield adapter


class TestNhnSmsContract(CarrierContract):
    """The carrier contract, against the simulator."""


def greeting_batch(refs: list[str], names: list[str]) -> Batch:
    recipients = [
        Recipient(r, phone(i), (name, str(i))) for i, (r, name) in enumerate(zip(refs, names, strict=True))
    ]
    return Batch(Channel.SMS, "15446859", "Hi #{name}, code #{code}", recipients, variables=("name", "code"))


def test_a_batch_of_1000_is_one_request(sim: SimulatorHandle, carrier: NhnSmsCarrier) -> None:
    """Given 1000 recipients, when submitted, then one provider request carries them all."""
    refs = references(1000)

    outcomes = carrier.submit(sms_batch(refs))

    assert len(outcomes) == 1000
    assert {o.outcome for o in outcomes} == {Outcome.ACCEPTED}
    assert len({o.carrier_id for o in outcomes}) == 1000
    summary = sim.summary()
    assert summary["requests"] == 1
    assert summary["accepted"] == 1000


def test_variables_are_filled_per_recipient_in_one_request(
    sim: SimulatorHandle, carrier: NhnSmsCarrier
) -> None:
    """Given a body with variables, when two batches of it are sent, then each recipient gets
    its own text, each batch is one send request and the template is registered once."""
    first, second = references(300), references(300)
    names = [f"name{i}" for i in range(300)]

    carrier.submit(greeting_batch(first, names))
    carrier.submit(greeting_batch(second, names))

    bodies = {row["reference"]: row["body"] for row in sim.ledger()}
    assert bodies[first[7]] == "Hi name7, code 7"
    assert bodies[second[299]] == "Hi name299, code 299"
    assert len(bodies) == 600
    summary = sim.summary()
    assert summary["requests"] == 2
    assert summary["templates"] == 1


def test_without_template_room_each_distinct_text_is_one_request(
    sim: SimulatorHandle, carrier: NhnSmsCarrier
) -> None:
    """Given the provider's template limit is reached, when a batch with variables is sent, then
    texts are rendered here and recipients with the same text share one request."""
    sim.configure(max_templates=0)
    refs = references(6)

    outcomes = carrier.submit(greeting_batch(refs, ["a", "b", "c", "a", "b", "c"]))

    assert {o.outcome for o in outcomes} == {Outcome.ACCEPTED}
    bodies = {row["reference"]: row["body"] for row in sim.ledger()}
    assert bodies[refs[4]] == "Hi b, code 4"
    assert sim.summary()["requests"] == 6  # the code differs per recipient: six texts


def test_a_failure_midway_keeps_the_outcomes_already_obtained(
    sim: SimulatorHandle, carrier: NhnSmsCarrier
) -> None:
    """Given a rendered batch needing two requests, when the second is refused with 429, then
    the error carries the first request's outcomes."""
    seed = next(s for s in range(1000) if _draws(s, 2) == [False, True])
    sim.configure(max_templates=0, http_429_rate=0.5, seed=seed)
    refs = references(4)
    batch = Batch(
        Channel.SMS,
        "15446859",
        "Hi #{name}",
        [Recipient(r, phone(i), (name,)) for i, (r, name) in enumerate(zip(refs, "aabb", strict=True))],
        variables=("name",),
    )

    with pytest.raises(CarrierRetryable) as caught:
        carrier.submit(batch)

    assert sorted(o.reference for o in caught.value.partial) == refs[:2]
    assert [row["reference"] for row in sim.ledger()] == refs[:2]


def _draws(seed: int, count: int) -> list[bool]:
    """Which of the simulator's next ``count`` send requests a 0.5 rate of 429 refuses."""
    rng = random.Random(seed)
    return [rng.random() < 0.5 for _ in range(count)]


def test_submit_time_refusals_are_per_recipient_outcomes(
    sim: SimulatorHandle, carrier: NhnSmsCarrier
) -> None:
    """Given the provider refuses some recipients (invalid number for good, system error for now),
    when submitted, then those are FAILED or RETRY, the rest accepted, as the seed predicts."""
    mix = {"-2019": 0.1, "-9999": 0.05}
    sim.configure(reject_mix=mix, seed=7)
    refs = references(400)

    outcomes = by_reference(carrier.submit(sms_batch(refs)))

    expected = {r: draw(7, f"{REJECT}:0", r, mix) for r in refs}
    for reference, code in expected.items():
        outcome = outcomes[reference]
        if code is None:
            assert outcome.outcome is Outcome.ACCEPTED
        else:
            assert outcome.code == code
            assert outcome.outcome is (Outcome.RETRY if code == "-9999" else Outcome.FAILED)
    assert {o.outcome for o in outcomes.values()} == {Outcome.ACCEPTED, Outcome.FAILED, Outcome.RETRY}
    assert {row["reference"] for row in sim.ledger()} == {r for r, c in expected.items() if c is None}


def test_429_is_retryable_and_accepts_nothing(sim: SimulatorHandle, carrier: NhnSmsCarrier) -> None:
    """Given the provider throttles, when a batch is submitted, then it is retryable and the
    ledger is empty."""
    sim.configure(http_429_rate=1.0)

    with pytest.raises(CarrierRetryable):
        carrier.submit(sms_batch(references(10)))

    assert sim.ledger() == []


def test_provider_system_error_is_retryable(sim: SimulatorHandle, carrier: NhnSmsCarrier) -> None:
    """Given the provider answers HTTP 500 with isSuccessful false (-9999), when submitted,
    then it is retryable (the answer proves nothing was accepted)."""
    sim.configure(http_5xx_rate=1.0)

    with pytest.raises(CarrierRetryable):
        carrier.submit(sms_batch(references(10)))

    assert sim.ledger() == []


def test_a_closed_port_is_retryable() -> None:
    """Given nothing listens, when a batch is submitted, then it is retryable."""
    adapter = NhnSmsCarrier(f"http://127.0.0.1:{free_port()}", "k", "s", timeout_seconds=1.0)
    with adapter, pytest.raises(CarrierRetryable):
        adapter.submit(sms_batch(references(1)))


def test_a_timeout_is_outcome_unknown_and_lookup_reconciles_it(sim: SimulatorHandle) -> None:
    """Given the provider records the request but answers too late, when submitted, then the
    outcome is unknown, the ledger holds every recipient, and lookup finds them accepted."""
    sim.configure(timeout_rate=1.0, timeout_sleep_ms=1500)
    since = datetime.now(UTC)
    refs = references(50)

    with NhnSmsCarrier(sim.url, sim.app_key, sim.secret_key, timeout_seconds=0.3) as adapter:
        with pytest.raises(CarrierOutcomeUnknown):
            adapter.submit(sms_batch(refs))
        found = by_reference(adapter.lookup(Channel.SMS, refs, since))

    assert sorted(row["reference"] for row in sim.ledger()) == sorted(refs)
    assert set(found) == set(refs)
    assert all(o.carrier_id for o in found.values())


def test_a_resubmitted_reference_is_not_sent_twice(sim: SimulatorHandle, carrier: NhnSmsCarrier) -> None:
    """Given a batch already accepted, when the same references are submitted again, then the
    simulator accepts nothing new and counts the duplicates."""
    refs = references(20)
    carrier.submit(sms_batch(refs))

    again = carrier.submit(sms_batch(refs))

    assert {o.outcome for o in again} == {Outcome.ACCEPTED}
    summary = sim.summary()
    assert summary["accepted"] == 20
    assert summary["duplicate_submissions"] == 20
    assert {row["submissions"] for row in sim.ledger()} == {2}


def test_lookup_sees_accepted_then_final(sim: SimulatorHandle, carrier: NhnSmsCarrier) -> None:
    """Given accepted references, when looked up at once and again after the result delay,
    then they are first accepted, then delivered or failed as the seed says."""
    mix = {"3015": 0.3}
    sim.configure(failure_mix=mix, seed=3)
    since = datetime.now(UTC)
    refs = references(10)
    carrier.submit(sms_batch(refs))

    early = carrier.lookup(Channel.SMS, refs, since)
    assert {o.outcome for o in early} == {Outcome.ACCEPTED}

    def settled() -> dict[str, Outcome] | None:
        found = {o.reference: o.outcome for o in carrier.lookup(Channel.SMS, refs, since)}
        return found if Outcome.ACCEPTED not in found.values() else None

    final = eventually(settled, 5.0)
    expected = {r: Outcome.FAILED if draw(3, FINAL, r, mix) else Outcome.DELIVERED for r in refs}
    assert final == expected


def test_reports_carry_result_codes_and_times(sim: SimulatorHandle, carrier: NhnSmsCarrier) -> None:
    """Given a failure mix, when results arrive, then reports give each recipient's final code
    and a result time after its acceptance; a passing failure ("phone off", 2003) is a RETRY."""
    mix = {"3015": 0.2, "2003": 0.1}
    sim.configure(failure_mix=mix, seed=11)
    since = datetime.now(UTC) - timedelta(seconds=1)
    refs = references(200)
    carrier.submit(sms_batch(refs))

    def complete() -> list[SubmitOutcome] | None:
        mine = [
            o for o in all_reports(carrier, Channel.SMS, since, datetime.now(UTC)) if o.reference in set(refs)
        ]
        return mine if len(mine) == len(refs) else None

    reported = by_reference(eventually(complete, 5.0))

    for reference in refs:
        code = draw(11, FINAL, reference, mix) or "1000"
        assert reported[reference].code == code
        expected = {"1000": Outcome.DELIVERED, "2003": Outcome.RETRY}.get(code, Outcome.FAILED)
        assert reported[reference].outcome is expected
    accepted_at = {row["reference"]: row["accepted_at"] for row in sim.ledger()}
    for reference, outcome in reported.items():
        assert outcome.result_at is not None
        assert outcome.result_at.timestamp() >= accepted_at[reference] + RESULT_DELAY_MS / 1000 - 0.01


def test_recipients_never_reported_stay_accepted_in_lookups_and_absent_from_reports(
    sim: SimulatorHandle, carrier: NhnSmsCarrier
) -> None:
    """Given a carrier told never to report about 40 % of recipients, when the others' results
    are in, then reports name only the others, and a lookup still says the silent ones are
    accepted (in progress), as the provider's list API shows a message without a result."""
    sim.configure(no_report_rate=0.4, seed=5)
    since = datetime.now(UTC) - timedelta(seconds=1)
    refs = references(100)
    carrier.submit(sms_batch(refs))
    silent = {r for r in refs if fraction(5, NO_REPORT_SALT, r) < 0.4}
    assert 20 <= len(silent) <= 60

    def complete() -> list[SubmitOutcome] | None:
        mine = [
            o for o in all_reports(carrier, Channel.SMS, since, datetime.now(UTC)) if o.reference in set(refs)
        ]
        return mine if len(mine) == len(refs) - len(silent) else None

    reported = by_reference(eventually(complete, 5.0))
    assert set(reported) == set(refs) - silent
    assert all(o.outcome is Outcome.DELIVERED for o in reported.values())
    looked_up = by_reference(carrier.lookup(Channel.SMS, sorted(silent), since))
    assert set(looked_up) == silent
    assert {o.outcome for o in looked_up.values()} == {Outcome.ACCEPTED}


def test_a_wrong_secret_key_is_rejected(sim: SimulatorHandle) -> None:
    """Given a wrong secret key, when a batch is submitted, then the request is rejected for good."""
    adapter = NhnSmsCarrier(sim.url, sim.app_key, "wrong", timeout_seconds=2.0)
    with adapter, pytest.raises(CarrierRejected) as caught:
        adapter.submit(sms_batch(references(1)))

    assert caught.value.code == "-1000"
    assert sim.ledger() == []


def test_a_body_the_provider_cannot_encode_is_rejected(carrier: NhnSmsCarrier) -> None:
    """Given a body with an emoji (not EUC-KR), when submitted, then the request is rejected (-2023)."""
    with pytest.raises(CarrierRejected) as caught:
        carrier.submit(sms_batch(references(1), body="hello \N{GRINNING FACE}"))

    assert caught.value.code == "-2023"
