"""The door of every stage: whatever a report, a hook or a stream entry holds, the checks either
refuse it (one bounded reason) or let through values PostgreSQL can hold. No servers needed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers.base import Outcome, SubmitOutcome
from carriers.nhn_time import parse_kst
from carriers.webhooks import Webhook, message_results
from engine.dispatch.reconcile import check_known
from engine.dispatch.references import MAX_JOB_ID, MAX_SEQ, parse_reference
from engine.lifecycle.dead_entries import entry_text
from engine.lifecycle.entry_checks import (
    CONTROL_CHARACTERS,
    REPORT_STATUSES,
    SEND_STATUSES,
    Refused,
    check_report,
)
from engine.lifecycle.flush_admission import admit, split

#: Why check_report may refuse a webhook's result.
REPORT_REFUSALS = {"invalid_reference", "invalid_code", "invalid_date", "control_characters"}
#: Any JSON value, small.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=3,
)
#: References: ours, ours out of range, anything.
references = st.one_of(
    st.builds(lambda j, s: f"{j}-{s}", st.integers(min_value=0, max_value=10**22), st.integers(0, 10**12)),
    st.builds(
        lambda j, s, a: f"{j}-{s}-{a}", st.integers(1, 2**64), st.integers(0, 2**33), st.integers(0, 2**33)
    ),
    st.text(max_size=30),
    json_values,
)
#: receiveDate values: dates at the edges of what Python holds, text, anything.
dates = st.one_of(
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    st.sampled_from(["0001-01-01 00:00:00", "9999-12-31 23:59:59", "2026-02-30 10:00:00", ""]),
    json_values,
)
codes = st.one_of(st.sampled_from(["1000", "3018", "MRC01", "x\x00", "-1001"]), json_values)
hooks = st.fixed_dictionaries(
    {},
    optional={
        "recipientGroupingKey": references,
        "resultCode": codes,
        "receiveDate": dates,
        "requestId": json_values,
        "recipientSeq": json_values,
    },
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(hooks, max_size=4))
def test_any_hook_is_refused_with_a_reason_or_becomes_a_storable_report(
    hook_list: list[dict[str, Any]],
) -> None:
    # Given a webhook call of arbitrary hooks
    webhook = Webhook("h", "MESSAGE_RESULT_UPDATE", "p", hook_list)
    # When its hooks are read and each result checked
    results, bad = message_results(webhook)
    for result in results:
        try:
            report = check_report(result, date_required=False)
        except Refused as refused:
            # Then a refusal carries a bounded reason ...
            assert refused.reason in REPORT_REFUSALS
            continue
        if report is None:
            continue
        # ... and what passes holds only values the recipients table can take
        assert 0 < report.job_id <= MAX_JOB_ID and 0 <= report.seq <= MAX_SEQ
        assert not CONTROL_CHARACTERS.search(report.outcome.code + report.outcome.message)
        assert report.outcome.result_at is None or report.outcome.result_at.year >= 2000
    assert all(b.reason in {"missing_field", "invalid_type", "invalid_date"} for b in bad)
    assert len(results) + len(bad) <= len(hook_list)


@given(references)
def test_a_reference_parses_only_into_numbers_postgresql_holds(reference: Any) -> None:
    parsed = parse_reference(reference)
    if parsed is not None:
        job_id, seq, attempt = parsed
        assert 0 < job_id <= MAX_JOB_ID and 0 <= seq <= MAX_SEQ and 0 <= attempt <= MAX_SEQ


@given(st.text(max_size=40))
def test_the_sms_carrier_reads_any_result_date_without_raising(text: str) -> None:
    # Year 0001 in KST used to raise OverflowError and stop the report poller.
    moment = parse_kst(text)
    assert moment is None or moment.tzinfo is not None


def test_the_reviewed_dates_and_references_are_refused_not_raised() -> None:
    # Given the hooks of the security review
    webhook = Webhook(
        "h",
        "MESSAGE_RESULT_UPDATE",
        "p",
        [
            {"recipientGroupingKey": "227-5", "resultCode": "x\x00"},
            {"recipientGroupingKey": "227-5", "resultCode": {"x": 1}},
            {"recipientGroupingKey": "227-5", "resultCode": "3018", "receiveDate": "0001-01-01 00:00:00"},
            {"recipientGroupingKey": "99999999999999999999-1", "resultCode": "3018"},
        ],
    )
    # When they are read and checked
    results, bad = message_results(webhook)
    reasons = [b.reason for b in bad]
    for result in results:
        try:
            check_report(result, date_required=False)
        except Refused as refused:
            reasons.append(refused.reason)
    # Then each is refused for what it is
    assert sorted(reasons) == ["control_characters", "invalid_date", "invalid_reference", "invalid_type"]


stream_items = st.one_of(
    json_values,
    st.lists(
        st.one_of(
            st.integers(-(2**70), 2**70),
            st.sampled_from(sorted(SEND_STATUSES | REPORT_STATUSES)),
            st.text(max_size=8),
            st.none(),
            st.floats(allow_nan=False),
        ),
        min_size=5,
        max_size=7,
    ),
)
stream_payloads = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"t": st.just("send")},
        optional={
            "job": st.integers(-(2**70), 2**70),
            "ca": st.floats(allow_nan=False) | st.integers(),
            "batch": st.integers(-(2**40), 2**40),
            "done": st.booleans() | json_values,
            "at": st.floats(allow_nan=False) | st.integers(),
            "o": st.lists(stream_items, max_size=4),
        },
    ),
    st.fixed_dictionaries(
        {"t": st.just("report")},
        optional={
            "r": st.lists(stream_items, max_size=4),
            "c": st.sampled_from(["nhn_sms", "x"]) | json_values,
        },
    ),
)


def _encoded(payload: Any) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:  # an integer beyond 64 bits: written by hand, as a foreign writer might
        return repr(payload).encode()


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(stream_payloads, max_size=4))
def test_any_stream_entry_is_admitted_clean_or_set_aside_with_its_raw_text(payloads: list[Any]) -> None:
    # Given result-stream entries of any content
    entries = [(f"{i}-0".encode(), {b"d": _encoded(p)}) for i, p in enumerate(payloads)]
    # When the flusher's door admits them
    admitted, dead = admit(entries)
    # Then what is admitted holds only storable values, and split parts are admitted again as is
    for payload in admitted:
        items = payload["o"] if payload["t"] == "send" else payload["r"]
        for item in items:
            assert all(not (isinstance(v, str) and CONTROL_CHARACTERS.search(v)) for v in item)
            assert all(not isinstance(v, int) or abs(v) < 2**63 for v in item)
        for part in split(payload):
            _, refused = admit([(b"0-0", {b"d": orjson.dumps(part)})])
            assert refused == []
    # And whatever was set aside can be written to a text column
    for entry in dead:
        assert "\x00" not in entry_text(entry.entry)


def test_a_report_without_a_date_is_refused_on_the_poll_path_only() -> None:
    report = SubmitOutcome("5-1", Outcome.DELIVERED, "1000", "ok", "r:1", None)
    assert check_report(report, date_required=False) is not None
    try:
        check_report(report, date_required=True)
    except Refused as refused:
        assert refused.reason == "invalid_date"
    else:
        raise AssertionError("a dateless poll result passed")
    dated = report._replace(result_at=datetime.now(UTC))
    assert check_report(dated, date_required=True) is not None


def test_a_malformed_answer_to_reconciliation_is_set_aside_and_never_sent_again() -> None:
    """Given the carrier's answers about a stale batch: one delivered, one failed with a dict
    for a code (as the adapter writes it: "{'x': 1}"), one failed with a NUL in its code
    When reconciliation checks them
    Then the good one is kept, the two malformed ones are set aside, and they are recorded as
    accepted (the carrier has them: sending them again would send twice), never with their code."""
    known = [
        SubmitOutcome("7-0", Outcome.DELIVERED, "1000", "ok", "r:0"),
        SubmitOutcome("7-1", Outcome.FAILED, "{'x': 1}", "bad", "r:1"),
        SubmitOutcome("7-2", Outcome.FAILED, "x\x00", "bad\x00", "r:2"),
    ]
    checked, dead = check_known(known, "nhn_sms")
    assert [(o.reference, o.outcome, o.code) for o in checked] == [
        ("7-0", Outcome.DELIVERED, "1000"),
        ("7-1", Outcome.ACCEPTED, "0"),
        ("7-2", Outcome.ACCEPTED, "0"),
    ]
    assert [(d.stage, d.reason) for d in dead] == [
        ("reconcile", "invalid_code"),
        ("reconcile", "control_characters"),
    ]
    assert all("\x00" not in o.message for o in checked)
