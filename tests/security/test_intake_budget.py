"""The intake budget through the running API: per tenant (every API process, Redis leases) and
per API process, of job request bytes in flight and submissions at once; and job request bodies
read as they arrive.

Given balsong running with small budgets (2 submissions and 1 MB in flight per tenant, 4
submissions per API process, 2 MB per request), when submissions are held open mid-body, then
those past a budget are told to retry (429, Retry-After, the limit named) while nothing already
admitted is lost, other tenants go on, and every share comes back when its submission ends — by
a stored job, a refusal, or a client gone mid-body — or lapses, when its API process died.
Oversized bodies and unknown fields are answered before the body has been sent whole.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
import redis

from engine.accounts.tenants import tenant_id_by_name
from engine.config import Settings
from engine.errors import IntakeLimited
from engine.intake.intake_budget import BudgetLimits, TenantLease
from engine.intake.intake_limits import limits_for, set_limits
from engine.keys import Keys
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.raw_http import OpenRequest, error_of, post_streamed
from tests.support.services import settings_env
from tests.support.stack import SENDER, Stack, running_stack

pytestmark = pytest.mark.integration

MAX_REQUEST_BYTES = 2 * 1024 * 1024
TENANT_BYTES = 1024 * 1024


@pytest.fixture(scope="module")
def budget_stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    small = replace(
        settings,
        max_job_request_bytes=MAX_REQUEST_BYTES,
        intake_max_concurrent_per_tenant=2,
        intake_max_bytes_in_flight_per_tenant=TENANT_BYTES,
        intake_max_concurrent_per_process=4,
        intake_max_bytes_in_flight_per_process=64 * 1024 * 1024,
    )
    with running_stack(small, tmp_path_factory.mktemp("budget-logs")) as stack:
        yield stack


def job(phones: list[str], text: str = "예산") -> bytes:
    return orjson.dumps(
        {"channel": "sms", "sender": SENDER, "body": text, "recipients": [{"phone": p} for p in phones]}
    )


class Tenant:
    def __init__(self, stack: Stack, name: str) -> None:
        self.client = stack.new_tenant(name)
        self.auth = {"Authorization": self.client.headers["Authorization"]}
        self.port = int(stack.settings.api_url.rsplit(":", 1)[1])
        with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
            tenant_id = tenant_id_by_name(conn, name)
        self.redis = redis.Redis.from_url(stack.settings.redis_url)
        self.key = Keys(stack.settings.redis_prefix).intake_budget(tenant_id)

    def hold(self, body: bytes, *, declared: bool = True) -> OpenRequest:
        """A submission with all but the last byte of ``body`` sent, once its lease is held."""
        before = self.in_flight()
        request = OpenRequest(
            self.port, "/v1/jobs", self.auth, content_length=len(body) if declared else None
        )
        request.send(body[:-1])
        eventually(lambda: self.in_flight() == before + 1)
        return request

    def in_flight(self) -> int:
        """Leases the tenant holds in Redis (submissions in progress)."""
        return int(self.redis.hlen(self.key))

    def submit(self, body: bytes) -> httpx.Response:
        return self.client.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def finish(request: OpenRequest, last: bytes) -> tuple[int, dict[str, str], bytes]:
    request.send(last)
    request.end()
    try:
        return request.response()
    finally:
        request.close()


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_submissions_past_the_tenants_concurrency_wait_and_none_admitted_is_lost(budget_stack: Stack) -> None:
    # Given a tenant with two submissions in progress (bodies not yet sent whole)
    tenant = Tenant(budget_stack, "budget-concurrency")
    bodies = [job([f"010-7100-{i:04d}"]) for i in range(2)]
    held = [tenant.hold(body) for body in bodies]

    # When it submits a third
    refused = tenant.submit(job(["010-7100-0009"]))

    # Then the third is told to retry later, naming the limit
    assert refused.status_code == 429
    error = problem(refused)
    assert error["code"] == "tenant_intake_concurrency"
    assert error["limit"] == "intake_max_concurrent_per_tenant"
    assert int(refused.headers["Retry-After"]) > 0
    # And the two in progress are accepted and sent when their bodies end
    for request, body in zip(held, bodies, strict=True):
        status, _, answer = finish(request, body[-1:])
        assert status == 202, answer
        wait_finished(budget_stack, tenant.client, int(orjson.loads(answer)["job_id"]))
    # And their budget is back: the third goes through now
    assert tenant.in_flight() == 0
    assert tenant.submit(job(["010-7100-0009"])).status_code == 202


def test_bytes_in_flight_past_the_tenants_budget_wait_but_one_large_job_alone_is_admitted(
    budget_stack: Stack,
) -> None:
    # Given a tenant with one submission of 0.6 MB in progress (a budget of 1 MB)
    tenant = Tenant(budget_stack, "budget-bytes")
    large = job([f"010-{7000 + i // 10_000}-{i % 10_000:04d}" for i in range(50_000)], "큰")
    assert TENANT_BYTES < len(large) < MAX_REQUEST_BYTES
    truncated = job([f"010-7200-{i:04d}" for i in range(30_000)])[: 600 * 1024]
    first = tenant.hold(truncated)

    # When it submits another 0.6 MB
    refused = tenant.submit(job([f"010-7300-{i:04d}" for i in range(30_000)])[: 600 * 1024])

    # Then it is told to retry, naming the byte budget
    assert refused.status_code == 429
    assert problem(refused)["limit"] == "intake_max_bytes_in_flight_per_tenant"
    assert "Retry-After" in refused.headers
    # And once the first has failed (its body is no job), the budget is back
    status, _, answer = finish(first, truncated[-1:])
    assert status == 422, answer
    assert tenant.in_flight() == 0
    # And a job larger than the whole budget, alone, is accepted
    accepted = tenant.submit(large)
    assert accepted.status_code == 202, accepted.text


def test_a_tenant_over_its_budget_does_not_hold_up_another(budget_stack: Stack) -> None:
    # Given tenant A at its limit of two submissions in progress
    busy = Tenant(budget_stack, "budget-busy")
    held = [busy.hold(job([f"010-7400-{i:04d}"])) for i in range(2)]
    assert busy.submit(job(["010-7400-0009"])).status_code == 429

    # When tenant B submits, then B's job is accepted at once
    other = Tenant(budget_stack, "budget-other")
    assert other.submit(job(["010-7500-0001"])).status_code == 202
    for request in held:
        request.close()
    eventually(lambda: busy.in_flight() == 0)


def test_the_api_process_has_its_own_budget_for_all_tenants(budget_stack: Stack) -> None:
    # Given two tenants with two submissions each in progress (4: the process's limit)
    tenants = [Tenant(budget_stack, f"budget-process-{n}") for n in range(2)]
    held = [t.hold(job([f"010-76{n}0-{i:04d}"])) for n, t in enumerate(tenants) for i in range(2)]

    # When a third tenant, with nothing in progress, submits
    third = Tenant(budget_stack, "budget-process-third")
    refused = third.submit(job(["010-7700-0001"]))

    # Then it is told to retry: the server is busy, not the tenant over its own budget
    assert refused.status_code == 429
    assert problem(refused)["limit"] == "intake_max_concurrent_per_process"
    for request in held:
        request.close()
    eventually(lambda: all(t.in_flight() == 0 for t in tenants))
    # And once those are gone, it is admitted
    eventually(lambda: third.submit(job(["010-7700-0001"])).status_code == 202)


def test_a_client_gone_mid_body_gives_its_budget_back(budget_stack: Stack) -> None:
    # Given a tenant at its limit, one of its submissions chunked without a Content-Length
    tenant = Tenant(budget_stack, "budget-gone")
    held = [tenant.hold(job([f"010-7800-{i:04d}"]), declared=i == 0) for i in range(2)]
    assert tenant.submit(job(["010-7800-0009"])).status_code == 429

    # When both clients close their connections mid-body
    for request in held:
        request.close()

    # Then their leases are given back, and the tenant submits again
    eventually(lambda: tenant.in_flight() == 0)
    assert tenant.submit(job(["010-7800-0009"])).status_code == 202


def test_an_oversized_body_is_refused_413_before_it_is_sent_whole(budget_stack: Stack) -> None:
    tenant = Tenant(budget_stack, "budget-oversized")
    total = 64 * 1024 * 1024

    def recipients() -> Iterator[bytes]:
        yield b'{"channel":"sms","sender":"02-1234-5678","body":"big","recipients":['
        many = b'{"phone":"010-8100-0001"},' * 2048
        for _ in range(total // len(many)):
            yield many

    # Given a Content-Length over the limit: refused before any of the body is read
    status, _, body, _ = post_streamed(
        tenant.port, "/v1/jobs", tenant.auth, recipients(), content_length=total
    )
    assert status == 413 and error_of(body)["code"] == "request_too_large"
    # Given a chunked body (no Content-Length) growing past the limit: refused as it arrives
    status, _, body, sent = post_streamed(tenant.port, "/v1/jobs", tenant.auth, recipients())
    assert status == 413 and error_of(body)["code"] == "request_too_large"
    assert sent < total
    eventually(lambda: tenant.in_flight() == 0)


def test_an_unknown_field_is_refused_naming_it_before_its_value_is_read(budget_stack: Stack) -> None:
    # Given a valid job followed by a "junk" field of 64 MB, sent chunked as it is generated
    tenant = Tenant(budget_stack, "budget-junk")
    total = 64 * 1024 * 1024

    def body() -> Iterator[bytes]:
        yield job(["010-7900-0001"])[:-1] + b',"junk":"'
        for _ in range(total // 65536):
            yield b"x" * 65536
        yield b'"}'

    # When it is posted, stopping as soon as the server answers
    status, _, answer, sent = post_streamed(tenant.port, "/v1/jobs", tenant.auth, body())

    # Then the answer is 422 naming the field, before the client got to send it whole
    assert status == 422
    assert (error_of(answer)["code"], error_of(answer)["field"]) == ("unknown_field", "junk")
    assert sent < total
    eventually(lambda: tenant.in_flight() == 0)


def test_a_streamed_job_keeps_its_idempotency(budget_stack: Stack, tmp_path: Path) -> None:
    # Given a job submitted chunked with an Idempotency-Key
    tenant = Tenant(budget_stack, "budget-idempotent")
    body = job([f"010-8000-{i:04d}" for i in range(500)])
    headers = {**tenant.auth, "Idempotency-Key": "stream-1"}
    pieces = (body[i : i + 1000] for i in range(0, len(body), 1000))
    status, _, first, _ = post_streamed(tenant.port, "/v1/jobs", headers, pieces)
    assert status == 202
    # When the same body is sent again in one piece, then it is the same job (200)
    again = tenant.client.post("/v1/jobs", content=body, headers={"Idempotency-Key": "stream-1"})
    assert again.status_code == 200 and again.json()["job_id"] == orjson.loads(first)["job_id"]
    # And a different body under the same key is refused
    other = tenant.client.post(
        "/v1/jobs", content=job(["010-8000-0001"]), headers={"Idempotency-Key": "stream-1"}
    )
    assert other.status_code == 422 and problem(other)["field"] == "Idempotency-Key"


def test_a_tenants_own_budget_replaces_the_settings(budget_stack: Stack) -> None:
    # Given a tenant given its own budget of one submission at once (`balsong tenant limits`)
    tenant = Tenant(budget_stack, "budget-own")
    with psycopg.connect(budget_stack.settings.database_url, autocommit=True) as conn:
        set_limits(
            conn,
            tenant_id_by_name(conn, "budget-own"),
            requests_per_second=None,
            recipients_per_day=None,
            max_concurrent=1,
        )
    held = tenant.hold(job(["010-8200-0001"]))

    # When it submits a second job while the first is in progress, then it waits
    refused = tenant.submit(job(["010-8200-0002"]))
    assert refused.status_code == 429
    assert problem(refused)["limit"] == "intake_max_concurrent_per_tenant"
    assert "at once" in problem(refused)["detail"]
    status, _, _ = finish(held, job(["010-8200-0001"])[-1:])
    assert status == 202


def test_an_operator_sets_and_resets_a_tenants_budget_with_the_cli(budget_stack: Stack) -> None:
    # Given a tenant with the settings' budget
    Tenant(budget_stack, "budget-cli")
    env = {**os.environ, **settings_env(budget_stack.settings)}

    def limits(*flags: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", "tenant", "limits", "budget-cli", *flags],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout

    # When an operator gives it its own budget, then it is shown, and kept
    shown = limits("--max-bytes-in-flight", "5000000", "--max-concurrent", "3")
    assert "5000000 request bytes in flight and 3 submissions at once" in shown
    with psycopg.connect(budget_stack.settings.database_url, autocommit=True) as conn:
        own = limits_for(conn, budget_stack.settings, tenant_id_by_name(conn, "budget-cli"))
    assert (own.max_bytes_in_flight, own.max_concurrent) == (5_000_000, 3)
    # And --reset gives it the settings' budget again
    assert f"{TENANT_BYTES} request bytes in flight and 2 submissions at once" in limits("--reset")


def test_a_share_whose_api_process_died_lapses_and_is_given_back(settings: Settings) -> None:
    # Given a tenant allowed one submission at once, whose one share was taken by an API process
    # that then died (it never renews nor releases it), with a lease of 0.3 s
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    one = BudgetLimits(max_bytes_in_flight=0, max_concurrent=1)
    TenantLease(client, keys, 990_001, one, ttl_seconds=0.3).take(1000)

    # When another process asks for a share, then it is refused while the lease lives
    with pytest.raises(IntakeLimited) as refused:
        TenantLease(client, keys, 990_001, one, ttl_seconds=30).take(1000)
    assert refused.value.limit == "intake_max_concurrent_per_tenant"

    # And admitted once it has lapsed, the lapsed share dropped from the tenant's budget
    def admitted() -> bool:
        try:
            TenantLease(client, keys, 990_001, one, ttl_seconds=30).take(1000)
        except IntakeLimited:
            return False
        return True

    eventually(admitted)
    assert client.hlen(keys.intake_budget(990_001)) == 1
