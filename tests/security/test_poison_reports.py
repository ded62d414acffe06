"""Poison never spreads: malformed or forged carrier reports, by webhook, by the report poller or
straight on the result stream, are set aside one by one; the good entries around them apply, and
another tenant's job sent afterwards still ends delivered in PostgreSQL.

Runs on the session's stack (real API, workers, scheduler, simulator, PostgreSQL, Redis, RabbitMQ).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import orjson
import psycopg
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.keys import Keys
from tests.support.jobs import wait_finished
from tests.support.stack import Stack, submit_sms

pytestmark = pytest.mark.integration

KST = ZoneInfo("Asia/Seoul")
T = TypeVar("T")
#: How long a test waits for the stack to catch up on something it did.
CATCH_UP_SECONDS = 60.0
#: A job id no job has (a well-formed reference of ours naming nothing).
NO_SUCH_JOB = 8_999_999_999
#: The text the test trigger refuses, as PostgreSQL refuses a value (SQLSTATE 22000).
REFUSED_TEXT = "refused by the poison test trigger"


def eventually(read: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    deadline = time.monotonic() + CATCH_UP_SECONDS
    value = read()
    while not done(value):
        assert time.monotonic() < deadline, f"{what}: still {value!r}"
        time.sleep(0.2)
        value = read()
    return value


def signed(stack: Stack, carrier: str, hooks: list[Any]) -> httpx.Response:
    """One webhook call as the provider makes it, signed with the test settings' signature."""
    signature = (
        stack.settings.sms_webhook_signature
        if carrier == "nhn_sms"
        else stack.settings.kakao_webhook_signature
    )
    body = {
        "hooksId": uuid.uuid4().hex,
        "webhookConfigId": "w",
        "productName": "KakaoTalk Bizmessage",
        "appKey": "k",
        "event": "MESSAGE_RESULT_UPDATE",
        "hooks": hooks,
    }
    return httpx.post(
        f"{stack.settings.api_url}/v1/carriers/{carrier}/reports",
        # json, not orjson: a hostile provider may send integers beyond 64 bits.
        content=json.dumps(body).encode(),
        headers={"X-Toast-Webhook-Signature": signature, "Content-Type": "application/json"},
        timeout=30,
    )


def hook(reference: Any, code: Any, received: Any = "2026-11-23 10:00:00") -> dict[str, Any]:
    return {
        "requestId": "r1",
        "recipientSeq": 1,
        "recipientNo": "01000000000",
        "resultCode": code,
        "receiveDate": received,
        "recipientGroupingKey": reference,
    }


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none yet)."""
    text = httpx.get(url, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


def worker_metrics(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.settings.worker_metrics_port}/metrics"


def scheduler_metrics(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.settings.scheduler_metrics_port}/metrics"


def last_dead_id(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(id), 0) FROM dead_entries").fetchone()
    assert row is not None
    return int(row[0])


def dead_since(conn: psycopg.Connection, after: int, stage: str) -> list[tuple[str, str | None, str]]:
    """(reason, carrier, raw entry) of entries ``stage`` set aside after id ``after``."""
    rows = conn.execute(
        "SELECT reason, carrier, entry FROM dead_entries WHERE id > %s AND stage = %s ORDER BY id",
        (after, stage),
    ).fetchall()
    return [(str(r), c, str(e)) for r, c, e in rows]


def statuses(client: httpx.Client, job_id: int) -> list[str]:
    rows = client.get(f"/v1/jobs/{job_id}/recipients").json()["recipients"]
    return [r["status"] for r in rows]


def db_statuses(conn: psycopg.Connection, job_id: int) -> list[str]:
    rows = conn.execute("SELECT status FROM recipients WHERE job_id = %s ORDER BY seq", (job_id,)).fetchall()
    return [str(r[0]) for r in rows]


@contextmanager
def reports_held(stack: Stack) -> Iterator[None]:
    """Messages accepted meanwhile get no result from the carrier for ten minutes."""
    stack.simulator.configure(result_delay_ms=600_000)
    try:
        yield
    finally:
        stack.simulator.configure(result_delay_ms=300)


def in_flight_job(stack: Stack, client: httpx.Client, count: int) -> tuple[int, list[str]]:
    """An SMS job of ``count`` recipients, all submitted and waiting for their reports; its id
    and references."""
    job_id = submit_sms(client, "독 검사", [f"010-4100-{i:04d}" for i in range(count)])
    eventually(lambda: statuses(client, job_id), lambda s: s == ["submitted"] * count, "job in flight")
    return job_id, [f"{job_id}-{seq}" for seq in range(count)]


def another_tenant_is_served(stack: Stack, conn: psycopg.Connection, name: str) -> None:
    """Then: a job another tenant sends now reaches completed, every recipient delivered, as
    the API shows it and as PostgreSQL holds it; and the result stream is drained."""
    client = stack.new_tenant(name)
    job_id = submit_sms(client, "다른 고객", [f"010-4200-{i:04d}" for i in range(5)])
    job = wait_finished(stack, client, job_id, timeout=CATCH_UP_SECONDS)
    assert job["status"] == "completed"
    assert statuses(client, job_id) == ["delivered"] * 5
    assert db_statuses(conn, job_id) == ["delivered"] * 5
    cache = redis.Redis.from_url(stack.settings.redis_url)
    try:
        results = Keys(stack.settings.redis_prefix).results
        pending = eventually(
            lambda: cache.xpending(results, "flusher")["pending"], lambda n: n == 0, "stream pending"
        )
        assert pending == 0
    finally:
        cache.close()


def test_malformed_hooks_are_set_aside_and_the_good_ones_of_the_call_apply(
    stack: Stack, conn: psycopg.Connection
) -> None:
    """Given a tenant's SMS job whose three recipients wait for their reports
    When one signed call on the SMS endpoint reports the first delivered, together with every
    malformed hook of the security review (NUL and dict result codes, a year-0001 date, a
    20-digit reference, a missing code, wrong types) and a reference naming no job, and the
    AlimTalk endpoint reports the third as failed (an SMS recipient: the wrong channel)
    Then the first is delivered, the two others are still in flight, the malformed hooks are in
    dead_entries with their reasons, the counters moved, and another tenant's job sent afterwards
    reaches completed in PostgreSQL."""
    client = stack.new_tenant("poison-webhook")
    after = last_dead_id(conn)
    worker = worker_metrics(stack)
    set_aside_before = metric(worker, "balsong_dead_entries_total", stage="webhook")
    wrong_before = metric(worker, "balsong_reports_unmatched_total", reason="wrong_channel")
    unknown_before = metric(worker, "balsong_reports_unmatched_total", reason="unknown_reference")
    with reports_held(stack):
        job_id, (first, second, third) = in_flight_job(stack, client, 3)
        malformed = [
            hook(second, "x\x00"),
            hook(second, {"x": 1}),
            hook(second, "3018", "0001-01-01 00:00:00"),
            hook("99999999999999999999-1", "3018"),
            {k: v for k, v in hook(second, "3018").items() if k != "resultCode"},
            hook(second, ["3018"]),
            hook(17, "3018"),
            hook(second, "3018", 20261123),
        ]
        answers = [
            signed(stack, "nhn_sms", [hook(first, "1000"), *malformed, hook(f"{NO_SUCH_JOB}-0", "3018")]),
            signed(stack, "nhn_alimtalk", [hook(third, "3018")]),
        ]
        assert [a.status_code for a in answers] == [202, 202]

        dead = eventually(
            lambda: dead_since(conn, after, "webhook"), lambda d: len(d) >= len(malformed), "hooks set aside"
        )
        eventually(
            lambda: metric(worker, "balsong_reports_unmatched_total", reason="wrong_channel"),
            lambda n: n > wrong_before,
            "wrong-channel report counted",
        )
        eventually(lambda: statuses(client, job_id)[0], lambda s: s == "delivered", "good hook applied")

    assert sorted(reason for reason, _, _ in dead) == [
        "control_characters",
        "invalid_date",
        "invalid_date",
        "invalid_reference",
        "invalid_type",
        "invalid_type",
        "invalid_type",
        "missing_field",
    ]
    assert {carrier for _, carrier, _ in dead} == {"nhn_sms"}
    # The raw entry is kept, its NUL escaped rather than refused by the table
    assert any("\\u0000" in entry for _, _, entry in dead)
    assert statuses(client, job_id) == ["delivered", "submitted", "submitted"]
    assert db_statuses(conn, job_id) == ["delivered", "submitted", "submitted"]
    assert metric(worker, "balsong_dead_entries_total", stage="webhook") >= set_aside_before + len(malformed)
    assert metric(worker, "balsong_reports_unmatched_total", reason="unknown_reference") > unknown_before
    # Nothing was stored as a reason built from a dict
    row = conn.execute(
        "SELECT count(*) FROM recipients WHERE job_id = %s AND reason_code LIKE 'carrier_{%%'", (job_id,)
    ).fetchone()
    assert row == (0,)
    another_tenant_is_served(stack, conn, "poison-webhook-next")


def kst(moment: datetime) -> str:
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def result_row(reference: Any, code: Any, result_date: Any, status: Any = "3") -> dict[str, Any]:
    """A row of the SMS list API as the carrier would write it (or a hostile one would)."""
    return {
        "requestId": "20261207000000poison",
        "requestDate": result_date,
        "resultDate": result_date,
        "recipientNo": "01041000000",
        "msgStatus": status,
        "msgStatusName": "결과수신",
        "resultCode": code,
        "resultCodeName": "",
        "recipientSeq": 1,
        "messageType": "SMS",
        "recipientGroupingKey": reference,
    }


def test_malformed_poll_results_are_set_aside_and_the_good_ones_of_the_page_apply(
    stack: Stack, conn: psycopg.Connection
) -> None:
    """Given a tenant's SMS job whose three recipients wait for their reports
    When the carrier's next answer to the report poller holds the first one delivered, among
    results with a dict or NUL result code, a year-0001 result date, a 20-digit reference, a
    list for a code, a number for a date, a reference naming no job and one without reference
    Then the first is delivered, the others are still in flight, the malformed results are in
    dead_entries, the counter moved, the poller's cursor moved on, and another tenant's job sent
    afterwards reaches completed in PostgreSQL."""
    client = stack.new_tenant("poison-poll")
    after = last_dead_id(conn)
    scheduler = scheduler_metrics(stack)
    set_aside_before = metric(scheduler, "balsong_dead_entries_total", stage="poll")
    with reports_held(stack):
        job_id, (first, second, third) = in_flight_job(stack, client, 3)
        # Filed now: inside the next poll's window (an SMS poll reads up to now).
        now = kst(datetime.now(UTC))
        malformed = [
            result_row(second, {"x": 1}, now),
            result_row(second, "x\x00", now),
            result_row(third, "3015", "0001-01-01 00:00:00"),
            result_row("99999999999999999999-1", "3015", now),
            result_row(second, ["3015"], now),
            result_row(third, "3015", 20261207),
        ]
        ignored = [result_row(f"{NO_SUCH_JOB}-0", "3015", now), result_row(None, "3015", now)]
        stack.simulator.inject_results("sms", [*malformed, result_row(first, "1000", now), *ignored])

        dead = eventually(
            lambda: dead_since(conn, after, "poll"), lambda d: len(d) >= len(malformed), "results set aside"
        )
        eventually(lambda: statuses(client, job_id)[0], lambda s: s == "delivered", "good result applied")

    assert sorted(reason for reason, _, _ in dead) == [
        "control_characters",
        "invalid_code",
        "invalid_code",
        "invalid_date",
        "invalid_date",
        "invalid_reference",
    ]
    assert {carrier for _, carrier, _ in dead} == {"nhn_sms"}
    assert statuses(client, job_id) == ["delivered", "submitted", "submitted"]
    assert db_statuses(conn, job_id) == ["delivered", "submitted", "submitted"]
    assert metric(scheduler, "balsong_dead_entries_total", stage="poll") >= set_aside_before + len(malformed)
    another_tenant_is_served(stack, conn, "poison-poll-next")


@pytest.fixture
def refusing_trigger(conn: psycopg.Connection) -> Iterator[None]:
    """PostgreSQL refuses (SQLSTATE 22000, data_exception) any recipient update to REFUSED_TEXT:
    a value that passes every check at the flusher's door and still cannot be written."""
    conn.execute(
        f"""
        CREATE FUNCTION poison_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.reason_text = '{REFUSED_TEXT}' THEN
                RAISE EXCEPTION 'refused by a test trigger' USING ERRCODE = 'data_exception';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER poison_test_refuse BEFORE UPDATE ON recipients
            FOR EACH ROW EXECUTE FUNCTION poison_test_refuse();
        """
    )
    try:
        yield
    finally:
        conn.execute("DROP TRIGGER poison_test_refuse ON recipients; DROP FUNCTION poison_test_refuse()")


def test_a_stream_entry_postgresql_refuses_is_set_aside_and_the_pass_goes_on(
    stack: Stack, conn: psycopg.Connection, refusing_trigger: None
) -> None:
    """Given a tenant's SMS job whose three recipients wait for their reports
    When the result stream receives, in one go, text that is not JSON, an entry of an unknown
    kind, a job id beyond int64, a page of reports (the first recipient delivered, the second
    with a NUL in its code), and a report of the third that passes the door but that PostgreSQL
    refuses (the whole pass fails on it)
    Then the first is delivered, the two others are still in flight, each bad entry is in
    dead_entries (the refused one as apply_failed, after the pass was retried entry by entry),
    the stream is drained, and another tenant's job sent afterwards reaches completed."""
    client = stack.new_tenant("poison-stream")
    after = last_dead_id(conn)
    scheduler = scheduler_metrics(stack)
    failed_before = metric(scheduler, "balsong_dead_entries_total", stage="flusher", reason="apply_failed")
    with reports_held(stack):
        job_id, _ = in_flight_job(stack, client, 3)
        at = time.time()
        entries = [
            b"not json {",
            orjson.dumps({"t": "bogus"}),
            b'{"t":"report","r":[[99999999999999999999,0,"failed","carrier_3018","x",null,0]]}',
            orjson.dumps(
                {
                    "t": "report",
                    "r": [
                        [job_id, 0, "delivered", None, None, at, 0],
                        [job_id, 1, "failed", "carrier_x\x00", "NUL", at, 0],
                    ],
                }
            ),
            orjson.dumps({"t": "report", "r": [[job_id, 2, "failed", "carrier_3018", REFUSED_TEXT, at, 0]]}),
        ]
        cache = redis.Redis.from_url(stack.settings.redis_url)
        try:
            pipe = cache.pipeline(transaction=False)
            for data in entries:
                pipe.xadd(Keys(stack.settings.redis_prefix).results, {"d": data})
            pipe.execute()
        finally:
            cache.close()

        dead = eventually(
            lambda: dead_since(conn, after, "flusher"), lambda d: len(d) >= 5, "entries set aside"
        )
        eventually(lambda: statuses(client, job_id)[0], lambda s: s == "delivered", "good report applied")

    assert sorted(reason for reason, _, _ in dead) == [
        "apply_failed",
        "invalid_code",
        "invalid_type",
        "not_json",
        "out_of_range",
    ]
    assert statuses(client, job_id) == ["delivered", "submitted", "submitted"]
    assert db_statuses(conn, job_id) == ["delivered", "submitted", "submitted"]
    assert (
        metric(scheduler, "balsong_dead_entries_total", stage="flusher", reason="apply_failed")
        > failed_before
    )
    another_tenant_is_served(stack, conn, "poison-stream-next")


#: Any JSON value, small (hypothesis).
json_values = st.recursive(
    # Integers orjson can write (the simulator is fed JSON; a carrier sends no wider ones).
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
    max_leaves=3,
)
hostile_dates = st.one_of(
    st.sampled_from(["0001-01-01 00:00:00", "9999-12-31 23:59:59", "2026-02-30 10:00:00"]),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
    json_values,
)
hostile_codes = st.one_of(
    st.sampled_from(["1000", "3018", "x\x00", "MRC01"]), st.text(max_size=8), json_values
)


def hostile_references(victims: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(victims),
        st.builds(lambda j, s: f"{j}-{s}", st.integers(0, 10**22), st.integers(0, 10**12)),
        json_values,
    )


def test_any_hooks_leave_the_webhook_path_working(stack: Stack, conn: psycopg.Connection) -> None:
    """Given a job in flight whose recipients hostile hooks may name
    When hypothesis sends signed calls of arbitrary hooks to both carrier endpoints
    Then every call is answered 202 or 422 (never a server error), no report message failed in
    the worker, and another tenant's job sent afterwards reaches completed in PostgreSQL."""
    client = stack.new_tenant("poison-webhook-fuzz")
    worker = worker_metrics(stack)
    errors_before = metric(worker, "dramatiq_message_errors_total", actor_name="apply_webhook")
    with reports_held(stack):
        _, victims = in_flight_job(stack, client, 3)
        hooks = st.fixed_dictionaries(
            {},
            optional={
                "recipientGroupingKey": hostile_references(victims),
                "resultCode": hostile_codes,
                "receiveDate": hostile_dates,
                "requestId": json_values,
                "recipientSeq": json_values,
            },
        )

        @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(carrier=st.sampled_from(["nhn_sms", "nhn_alimtalk"]), call=st.lists(hooks, max_size=4))
        def send(carrier: str, call: list[dict[str, Any]]) -> None:
            assert signed(stack, carrier, call).status_code in (202, 422)

        send()
    another_tenant_is_served(stack, conn, "poison-webhook-fuzz-next")
    assert metric(worker, "dramatiq_message_errors_total", actor_name="apply_webhook") == errors_before


def test_any_poll_results_leave_the_poller_working(stack: Stack, conn: psycopg.Connection) -> None:
    """Given a job in flight whose recipients hostile results may name
    When hypothesis has the carrier answer the report poller with arbitrary rows, and a last
    good row for a recipient kept out of the hostile ones
    Then that good row is applied (the page holding every hostile row was read through), the
    poller's cursor moved past it, and another tenant's job sent afterwards reaches completed."""
    client = stack.new_tenant("poison-poll-fuzz")
    cache = redis.Redis.from_url(stack.settings.redis_url)
    cursor = Keys(stack.settings.redis_prefix).cursor("reports:sms")
    try:
        with reports_held(stack):
            job_id, references = in_flight_job(stack, client, 4)
            victims, sentinel = references[:3], references[3]
            now = kst(datetime.now(UTC))
            rows = st.builds(
                result_row,
                hostile_references(victims),
                hostile_codes,
                st.one_of(st.just(now), hostile_dates),
                st.one_of(st.just("3"), json_values),
            )

            @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(page=st.lists(rows, max_size=4))
            def inject(page: list[dict[str, Any]]) -> None:
                stack.simulator.inject_results("sms", page)

            inject()
            injected_at = time.time()
            # (Filed as it is injected: the fuzzing took a while, and an SMS poll follows results.)
            stack.simulator.inject_results("sms", [result_row(sentinel, "1000", kst(datetime.now(UTC)))])
            eventually(lambda: statuses(client, job_id)[3], lambda s: s == "delivered", "sentinel applied")
            eventually(
                lambda: float(cache.get(cursor) or 0), lambda c: c > injected_at - 5, "poll cursor moved on"
            )
    finally:
        cache.close()
    another_tenant_is_served(stack, conn, "poison-poll-fuzz-next")
