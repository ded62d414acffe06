"""NhnAlimtalkCarrier against the simulator, a real NHN AlimTalk v2.3 API over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from carriers.base import Batch, Channel, Outcome, Recipient, SubmitOutcome, all_reports
from carriers.errors import CarrierOutcomeUnknown, CarrierRejected, CarrierRetryable
from carriers.nhn_alimtalk import NhnAlimtalkCarrier, ProviderFallback
from carriers.nhn_alimtalk_codes import NOT_KAKAO_USER, USER_BLOCKED
from carriers.simulator.behaviour import FINAL, draw
from tests.carriers.contract import CarrierContract, by_reference, eventually, phone, references
from tests.support.simulator import SimulatorHandle, free_port, running_simulator

#: Acceptance to final result in the suite, in milliseconds: short, but long enough to see
#: "accepted, not yet final".
#: Long enough that a lookup right after a submit comes before the result, even on a busy machine.
RESULT_DELAY_MS = 1500
TWO_DAYS_SECONDS = 2 * 86400


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with running_simulator(kakao_result_delay_ms=RESULT_DELAY_MS) as handle:
        yield handle


@pytest.fixture
def sim(simulator: SimulatorHandle) -> Iterator[SimulatorHandle]:
    simulator.reset()
    yield simulator


def adapter_for(sim: SimulatorHandle, *, timeout_seconds: float = 2.0, **options: Any) -> NhnAlimtalkCarrier:
    return NhnAlimtalkCarrier(
        sim.url, sim.app_key, sim.secret_key, sim.kakao_sender_key, timeout_seconds, **options
    )


@pytest.fixture
def carrier(sim: SimulatorHandle) -> Iterator[NhnAlimtalkCarrier]:
    with adapter_for(sim) as adapter:
        yield adapter


def otp_batch(refs: list[str], idempotency_key: str = "") -> Batch:
    recipients = [Recipient(r, phone(i), (f"{i:06d}",)) for i, r in enumerate(refs)]
    return Batch(
        Channel.KAKAO,
        "",
        "인증번호는 #{code}입니다.",
        recipients,
        variables=("code",),
        idempotency_key=idempotency_key,
        template_code="OTP",
    )


def shipped_batch(refs: list[str], template_code: str = "ORDER_SHIPPED") -> Batch:
    recipients = [Recipient(r, phone(i), (f"고객{i}", f"INV{i:05d}")) for i, r in enumerate(refs)]
    return Batch(
        Channel.KAKAO,
        "",
        "#{name}님, 주문하신 상품이 발송되었습니다. 송장번호: #{invoice}",
        recipients,
        variables=("name", "invoice"),
        template_code=template_code,
    )


class TestNhnAlimtalkContract(CarrierContract):
    """The carrier contract, against the simulator's AlimTalk routes."""

    CHANNEL = Channel.KAKAO

    #: LMS belongs to the SMS carrier; see test_a_batch_of_another_channel_is_refused.
    test_lms_batch_is_accepted = None  # type: ignore[assignment]

    def batch_of(self, recipients: list[Recipient]) -> Batch:
        filled = [r._replace(values=(f"{i:06d}",)) for i, r in enumerate(recipients)]
        return Batch(
            Channel.KAKAO, "", "인증번호는 #{code}입니다.", filled, variables=("code",), template_code="OTP"
        )


def test_a_batch_of_another_channel_is_refused(carrier: NhnAlimtalkCarrier) -> None:
    """Given an LMS batch, when handed to the AlimTalk carrier, then it is refused before any
    request (a routing mistake, not a provider answer)."""
    batch = Batch(Channel.LMS, "15446859", "text", [Recipient("r", phone(1))], "title")

    with pytest.raises(ValueError):
        carrier.submit(batch)


def test_a_batch_of_1000_is_one_request(sim: SimulatorHandle, carrier: NhnAlimtalkCarrier) -> None:
    """Given 1000 recipients, when submitted, then one provider request carries them all."""
    refs = references(1000)

    outcomes = carrier.submit(otp_batch(refs))

    assert len(outcomes) == 1000
    assert {o.outcome for o in outcomes} == {Outcome.ACCEPTED}
    assert len({o.carrier_id for o in outcomes}) == 1000
    summary = sim.summary()
    assert summary["requests"] == 1
    assert summary["accepted"] == summary["by_channel"]["kakao"] == 1000


def test_template_parameters_are_filled_per_recipient(
    sim: SimulatorHandle, carrier: NhnAlimtalkCarrier
) -> None:
    """Given a template with two variables, when a batch is sent, then each recipient's ledger
    body is the template filled with its own values, on the kakao channel."""
    refs = references(5)

    carrier.submit(shipped_batch(refs))

    rows = {row["reference"]: row for row in sim.ledger()}
    assert rows[refs[3]]["body"] == "고객3님, 주문하신 상품이 발송되었습니다. 송장번호: INV00003"
    assert {row["channel"] for row in rows.values()} == {"kakao"}
    assert {row["template_code"] for row in rows.values()} == {"ORDER_SHIPPED"}
    expected = {"reference", "recipient_no", "body", "request_id", "accepted_at", "submissions"}
    assert expected | {"final_status", "result_code"} <= set(rows[refs[0]])


def test_an_unknown_template_is_rejected(sim: SimulatorHandle, carrier: NhnAlimtalkCarrier) -> None:
    """Given a template code the provider does not know, when submitted, then the request is
    rejected for good (-3003) and nothing is sent."""
    with pytest.raises(CarrierRejected) as caught:
        carrier.submit(shipped_batch(references(2), template_code="NO_SUCH"))

    assert caught.value.code == "-3003"
    assert sim.ledger() == []


def test_a_template_under_review_is_rejected(sim: SimulatorHandle, carrier: NhnAlimtalkCarrier) -> None:
    """Given a template not yet approved, when submitted, then it is rejected (-3005)."""
    sim.add_kakao_template("REVIEWING", "#{name}님 안녕하세요", status="TSC02")
    batch = Batch(
        Channel.KAKAO,
        "",
        "",
        [Recipient("r1", phone(1), ("a",))],
        variables=("name",),
        template_code="REVIEWING",
    )

    with pytest.raises(CarrierRejected) as caught:
        carrier.submit(batch)

    assert caught.value.code == "-3005"


def test_a_missing_parameter_fails_each_recipient(sim: SimulatorHandle, carrier: NhnAlimtalkCarrier) -> None:
    """Given values for only one of the template's two variables, when submitted, then each
    recipient is refused (-3049) and, all being refused (-1031), they come back as outcomes."""
    refs = references(3)
    recipients = [Recipient(r, phone(i), (f"n{i}",)) for i, r in enumerate(refs)]
    batch = Batch(Channel.KAKAO, "", "", recipients, variables=("name",), template_code="ORDER_SHIPPED")

    outcomes = by_reference(carrier.submit(batch))

    assert {o.outcome for o in outcomes.values()} == {Outcome.FAILED}
    assert {o.code for o in outcomes.values()} == {"-3049"}
    assert sim.ledger() == []


def test_a_reused_idempotency_key_is_outcome_unknown(
    sim: SimulatorHandle, carrier: NhnAlimtalkCarrier
) -> None:
    """Given a batch sent with an idempotency key, when another request carries the same key
    within 10 minutes, then the provider refuses it (-1005) and the outcome is unknown (reconcile
    by lookup), and nothing more is sent."""
    first, second = references(3), references(3)
    carrier.submit(otp_batch(first, idempotency_key="batch-7-attempt-1"))

    with pytest.raises(CarrierOutcomeUnknown):
        carrier.submit(otp_batch(second, idempotency_key="batch-7-attempt-1"))

    assert sorted(row["reference"] for row in sim.ledger()) == sorted(first)


def test_the_request_carries_the_published_fields() -> None:
    """Given an adapter, when a batch is submitted, then the request has the idempotency header,
    senderKey, templateCode and per-recipient templateParameter and grouping key, and no
    resendParameter unless a provider fallback is configured."""
    seen: list[httpx.Request] = []

    def provider(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        entries = orjson.loads(request.content)["recipientList"]
        results = [
            {"recipientSeq": i, "recipientNo": e["recipientNo"], "resultCode": 0, "resultMessage": "SUCCESS",
             "recipientGroupingKey": e["recipientGroupingKey"]}
            for i, e in enumerate(entries, 1)
        ]  # fmt: skip
        body = {"header": {"resultCode": 0, "resultMessage": "SUCCESS", "isSuccessful": True},
                "message": {"requestId": "R1", "sendResults": results}}  # fmt: skip
        return httpx.Response(200, content=orjson.dumps(body))

    def send(**options: Any) -> dict[str, Any]:
        transport = httpx.MockTransport(provider)
        with NhnAlimtalkCarrier(
            "http://kakao", "app", "secret", "SK", 2.0, transport=transport, **options
        ) as a:
            a.submit(otp_batch(["a", "b"], idempotency_key="key-1"))
        return dict(orjson.loads(seen[-1].content))

    payload = send()
    request = seen[-1]
    assert request.url.path == "/alimtalk/v2.3/appkeys/app/messages"
    assert request.headers["X-NC-API-IDEMPOTENCY-KEY"] == "key-1"
    assert request.headers["X-Secret-Key"] == "secret"
    assert payload["senderKey"] == "SK" and payload["templateCode"] == "OTP"
    assert payload["recipientList"][1] == {
        "recipientNo": phone(1),
        "recipientGroupingKey": "b",
        "templateParameter": {"code": "000001"},
    }
    fallback = send(provider_fallback=ProviderFallback(enabled=True, resend_type="SMS", send_no="15446859"))
    assert fallback["recipientList"][0]["resendParameter"] == {
        "isResend": True,
        "resendType": "SMS",
        "resendSendNo": "15446859",
    }
    assert send(provider_fallback=ProviderFallback())["recipientList"][0]["resendParameter"] == {
        "isResend": False
    }


def test_429_is_retryable_and_accepts_nothing(sim: SimulatorHandle, carrier: NhnAlimtalkCarrier) -> None:
    """Given the provider throttles, when a batch is submitted, then it is retryable and throttled."""
    sim.configure(http_429_rate=1.0)

    with pytest.raises(CarrierRetryable) as caught:
        carrier.submit(otp_batch(references(10)))

    assert caught.value.throttled
    assert sim.ledger() == []


def test_provider_system_error_is_retryable(sim: SimulatorHandle, carrier: NhnAlimtalkCarrier) -> None:
    """Given HTTP 500 with isSuccessful false (-9999), when submitted, then it is retryable."""
    sim.configure(http_5xx_rate=1.0)

    with pytest.raises(CarrierRetryable):
        carrier.submit(otp_batch(references(10)))

    assert sim.ledger() == []


def test_a_closed_port_is_retryable() -> None:
    """Given nothing listens, when a batch is submitted, then it is retryable."""
    adapter = NhnAlimtalkCarrier(f"http://127.0.0.1:{free_port()}", "k", "s", "SK", timeout_seconds=1.0)
    with adapter, pytest.raises(CarrierRetryable):
        adapter.submit(otp_batch(references(1)))


def test_a_timeout_is_outcome_unknown_and_lookup_reconciles_it(sim: SimulatorHandle) -> None:
    """Given the provider records the request but answers too late, when submitted, then the
    outcome is unknown, and lookup finds every recipient accepted."""
    sim.configure(timeout_rate=1.0, timeout_sleep_ms=1500)
    since = datetime.now(UTC)
    refs = references(30)

    with adapter_for(sim, timeout_seconds=0.3) as adapter:
        with pytest.raises(CarrierOutcomeUnknown):
            adapter.submit(otp_batch(refs))
        found = by_reference(adapter.lookup(Channel.KAKAO, refs, since))

    assert sorted(row["reference"] for row in sim.ledger()) == sorted(refs)
    assert set(found) == set(refs)
    assert all(o.carrier_id for o in found.values())


def test_a_resubmitted_reference_is_not_sent_twice(sim: SimulatorHandle, carrier: NhnAlimtalkCarrier) -> None:
    """Given a batch already accepted, when sent again (new idempotency key), then the simulator
    accepts nothing new and counts the duplicates."""
    refs = references(20)
    carrier.submit(otp_batch(refs, idempotency_key="a1"))

    again = carrier.submit(otp_batch(refs, idempotency_key="a2"))

    assert {o.outcome for o in again} == {Outcome.ACCEPTED}
    assert sim.summary()["duplicate_submissions"] == 20
    assert {row["submissions"] for row in sim.ledger()} == {2}


def test_not_a_kakao_user_and_blocked_are_failed_with_the_providers_codes(
    sim: SimulatorHandle, carrier: NhnAlimtalkCarrier
) -> None:
    """Given Kakao answers "not a KakaoTalk user" (3019) and "AlimTalk blocked" (3020) for some,
    when looked up after the result delay, then those are FAILED with Kakao's code and text, the
    others DELIVERED, as the seed predicts; and they are first ACCEPTED."""
    mix = {NOT_KAKAO_USER: 0.3, USER_BLOCKED: 0.2}
    sim.configure(kakao_failure_mix=mix, seed=5)
    since = datetime.now(UTC)
    refs = references(30)
    carrier.submit(otp_batch(refs))

    assert {o.outcome for o in carrier.lookup(Channel.KAKAO, refs, since)} == {Outcome.ACCEPTED}

    def settled() -> dict[str, SubmitOutcome] | None:
        found = by_reference(carrier.lookup(Channel.KAKAO, refs, since))
        return found if all(o.outcome is not Outcome.ACCEPTED for o in found.values()) else None

    final = eventually(settled, 5.0)
    for reference in refs:
        code = draw(5, FINAL, reference, mix) or "1000"
        assert final[reference].code == code
        assert final[reference].outcome is (Outcome.DELIVERED if code == "1000" else Outcome.FAILED)
    codes = {o.code: o.message for o in final.values()}
    assert "not a KakaoTalk user" in codes[NOT_KAKAO_USER]
    assert "blocked" in codes[USER_BLOCKED]


def test_reports_carry_result_codes_and_times(sim: SimulatorHandle, carrier: NhnAlimtalkCarrier) -> None:
    """Given a failure mix, when results arrive, then reports give each recipient's final code
    and a result time after its acceptance plus the delay."""
    mix = {NOT_KAKAO_USER: 0.2, USER_BLOCKED: 0.1}
    sim.configure(kakao_failure_mix=mix, seed=11)
    since = datetime.now(UTC) - timedelta(seconds=1)
    refs = references(200)
    carrier.submit(otp_batch(refs))

    def complete() -> list[SubmitOutcome] | None:
        mine = [
            o
            for o in all_reports(carrier, Channel.KAKAO, since, datetime.now(UTC))
            if o.reference in set(refs)
        ]
        return mine if len(mine) == len(refs) else None

    reported = by_reference(eventually(complete, 5.0))

    for reference in refs:
        assert reported[reference].code == (draw(11, FINAL, reference, mix) or "1000")
    accepted_at = {row["reference"]: row["accepted_at"] for row in sim.ledger()}
    for reference, outcome in reported.items():
        assert outcome.result_at is not None
        assert outcome.result_at.timestamp() >= accepted_at[reference] + RESULT_DELAY_MS / 1000 - 0.01


def test_results_two_days_later_come_through_when_the_clock_moves(
    sim: SimulatorHandle, carrier: NhnAlimtalkCarrier
) -> None:
    """Given Kakao takes two days, when looked up at once, then recipients are ACCEPTED; when the
    simulator's clock moves two days on, then lookup and reports see the final results."""
    sim.configure(
        kakao_result_delay_ms=TWO_DAYS_SECONDS * 1000, kakao_failure_mix={NOT_KAKAO_USER: 0.5}, seed=2
    )
    since = datetime.now(UTC) - timedelta(seconds=1)
    refs = references(10)
    carrier.submit(otp_batch(refs))

    assert {o.outcome for o in carrier.lookup(Channel.KAKAO, refs, since)} == {Outcome.ACCEPTED}
    assert all_reports(carrier, Channel.KAKAO, since, datetime.now(UTC)) == []

    sim.configure(clock_offset_seconds=TWO_DAYS_SECONDS + 60)
    looked_up = by_reference(carrier.lookup(Channel.KAKAO, refs, since))
    later = datetime.now(UTC) + timedelta(seconds=TWO_DAYS_SECONDS + 60)
    reported = by_reference(all_reports(carrier, Channel.KAKAO, since + timedelta(days=2), later))

    assert {o.outcome for o in looked_up.values()} == {Outcome.DELIVERED, Outcome.FAILED}
    assert set(reported) == set(refs)
    assert {r: o.code for r, o in reported.items()} == {r: o.code for r, o in looked_up.items()}


def test_template_gives_its_variables_and_is_cached(
    sim: SimulatorHandle, carrier: NhnAlimtalkCarrier
) -> None:
    """Given a registered template, when asked for, then its variables come in order and it is
    approved; a change within the cache's life is not seen; an unknown code is rejected."""
    sim.add_kakao_template("WELCOME", "#{name}님 가입을 환영합니다. #{name}님의 등급: #{grade}")

    template = carrier.template("WELCOME")
    sim.add_kakao_template("WELCOME", "#{changed}")

    assert template.variables == ("name", "grade")
    assert template.approved
    assert carrier.template("WELCOME") == template
    assert carrier.template("ORDER_SHIPPED").variables == ("name", "invoice")
    with pytest.raises(CarrierRejected) as caught:
        carrier.template("NO_SUCH")
    assert caught.value.code == "template_not_found"


def test_a_template_under_review_is_not_approved(sim: SimulatorHandle, carrier: NhnAlimtalkCarrier) -> None:
    """Given a template under review, when asked for, then it says so."""
    sim.add_kakao_template("LATER", "곧 #{what}", status="TSC02")

    template = carrier.template("LATER")

    assert (template.status, template.approved) == ("TSC02", False)


def test_a_wrong_secret_key_is_rejected(sim: SimulatorHandle) -> None:
    """Given a wrong secret key, when a batch is submitted, then it is rejected for good (-1001)."""
    adapter = NhnAlimtalkCarrier(sim.url, sim.app_key, "wrong", sim.kakao_sender_key, timeout_seconds=2.0)
    with adapter, pytest.raises(CarrierRejected) as caught:
        adapter.submit(otp_batch(references(1)))

    assert caught.value.code == "-1001"


def test_an_unknown_sender_key_is_rejected(sim: SimulatorHandle) -> None:
    """Given a sender key the provider does not know, when submitted, then it is rejected (-2017)."""
    adapter = NhnAlimtalkCarrier(sim.url, sim.app_key, sim.secret_key, "other-sender", timeout_seconds=2.0)
    with adapter, pytest.raises(CarrierRejected) as caught:
        adapter.submit(otp_batch(references(1)))

    assert caught.value.code == "-2017"


def test_the_template_list_holds_the_approved_templates_across_pages(sim: SimulatorHandle) -> None:
    """Given more approved templates than one page holds and one under review, when the list of
    approved templates is asked for, then every approved one comes, page after page, with its
    variables, and the one under review does not."""
    for number in range(1005):
        sim.add_kakao_template(f"BULK{number:04d}", f"#{{name}}님 안내 {number}", name=f"대량 {number}")
    sim.add_kakao_template("PENDING", "검토 중 #{what}", status="TSC02")
    with adapter_for(sim) as carrier:
        listed = carrier.templates()
        everything = {t.code for t in carrier.templates(status=None)}

    codes = [t.code for t in listed]
    assert len(codes) == len(set(codes)) == 1005 + 3  # the simulator's three defaults
    assert "PENDING" not in codes and {"ORDER_SHIPPED", "BULK0000", "BULK1004"} <= set(codes)
    bulk = next(t for t in listed if t.code == "BULK1004")
    assert (bulk.name, bulk.variables, bulk.approved) == ("대량 1004", ("name",), True)
    # And every status is listed when asked
    assert "PENDING" in everything
