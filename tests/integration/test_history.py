"""Send history and recipient filters: what operators look through every day.

Given jobs sent through the real processes, when an operator lists them or narrows a job's
recipients, then the API answers the tenant's own jobs newest first with their counts, and
exactly the recipients each filter names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import SENDER, Stack, submit_sms

pytestmark = pytest.mark.integration


def all_pages(client: httpx.Client, path: str, params: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page[key])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def set_job_columns(stack: Stack, job_id: int, **columns: Any) -> None:
    """Move a job in time or kind directly (the test's stand-in for a job made long ago)."""
    assignments = ", ".join(f"{name} = %({name})s" for name in columns)
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        conn.execute(f"UPDATE jobs SET {assignments} WHERE id = %(id)s", {**columns, "id": job_id})


def test_history_lists_the_tenants_jobs_newest_first_with_counts_and_a_cursor(stack: Stack) -> None:
    # Given five finished jobs of one tenant and a job of another tenant
    client = stack.new_tenant("history-owner")
    other = stack.new_tenant("history-other")
    job_ids = [submit_sms(client, f"안내 {n}", [f"010-7000-{n:04d}", "010-12"]) for n in range(5)]
    foreign = submit_sms(other, "남의 작업", ["010-7001-0001"])
    for job_id in job_ids:
        wait_finished(stack, client, job_id)

    # When the history is read two jobs at a time
    jobs = all_pages(client, "/v1/jobs", {"limit": 2}, "jobs")

    # Then every job of the tenant comes once, newest first, with its counts, and no other's job
    assert [job["id"] for job in jobs] == sorted(job_ids, reverse=True)
    assert foreign not in {job["id"] for job in jobs}
    newest = jobs[0]
    assert newest["status"] == "partially_failed"
    assert newest["kind"] == "manual"
    assert newest["channel"] == "sms"
    assert newest["counts"]["total"] == 2
    assert newest["counts"]["delivered"] == 1
    assert newest["counts"]["failed"] == 1


def test_history_filters_by_kst_day_status_channel_and_kind(stack: Stack) -> None:
    # Given three jobs: one made at 00:00 KST on 2026-03-02 (15:00 UTC the day before),
    # one at 23:59 KST on 2026-03-01, and one automatic job now
    client = stack.new_tenant("history-filters")
    early, late, automatic = (submit_sms(client, "필터", [f"010-7100-{n:04d}"]) for n in range(3))
    for job_id in (early, late, automatic):
        wait_finished(stack, client, job_id)
    set_job_columns(stack, early, created_at=datetime(2026, 3, 1, 15, 0, tzinfo=UTC))
    set_job_columns(stack, late, created_at=datetime(2026, 3, 1, 14, 59, tzinfo=UTC))
    set_job_columns(stack, automatic, kind="automatic")

    def ids(**params: Any) -> list[int]:
        return [job["id"] for job in all_pages(client, "/v1/jobs", params, "jobs")]

    # When filtered by KST calendar day, then the day boundary is midnight in Seoul
    assert ids(created_from="2026-03-02", created_to="2026-03-02") == [early]
    assert ids(created_from="2026-03-01", created_to="2026-03-01") == [late]
    assert ids(created_to="2026-03-02") == [early, late]
    # and by kind, status and channel
    assert ids(kind="automatic") == [automatic]
    assert set(ids(status="completed")) == {early, late, automatic}
    assert ids(status="sending") == []
    assert ids(channel="lms") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"channel": "fax"}, "channel"),
        ({"kind": "weekly"}, "kind"),
        ({"created_from": "23/11/2026"}, "created_from"),
        ({"created_from": "2026-11-23", "created_to": "2026-11-01"}, "created_to"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_history_filters_are_refused_naming_the_field(
    stack: Stack, params: dict[str, Any], field: str
) -> None:
    client = stack.new_tenant(f"history-bad-{field}-{len(params)}-{next(iter(params.values()))}")
    response = client.get("/v1/jobs", params=params)
    assert response.status_code == 422, response.text
    assert problem(response)["field"] == field


def test_recipient_filters_by_phone_channel_status_and_send_time(stack: Stack) -> None:
    # Given an auto job: short texts go as SMS, and one long text as LMS; one number is invalid
    client = stack.new_tenant("recipient-filters")
    recipients = [
        {"phone": "010-7200-0001", "variables": {"extra": ""}},
        {"phone": "010-7200-0002", "variables": {"extra": ""}},
        {"phone": "010-7299-4321", "variables": {"extra": "긴 안내문입니다. " * 12}},
        {"phone": "010-12", "variables": {"extra": ""}},
    ]
    response = client.post(
        "/v1/jobs",
        json={"channel": "auto", "sender": SENDER, "body": "안내#{extra}", "recipients": recipients},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    wait_finished(stack, client, job_id)
    path = f"/v1/jobs/{job_id}/recipients"

    def phones(**params: Any) -> list[str]:
        return [r["phone"] for r in all_pages(client, path, params, "recipients")]

    # When filtered by the last four digits or the whole number in any written form
    assert phones(phone="4321") == ["010-****-4321"]
    assert phones(phone="+82 10-7200-0002") == ["010-****-0002"]
    assert phones(phone="01072000002") == ["010-****-0002"]
    # by the channel used and by status
    assert phones(channel="lms") == ["010-****-4321"]
    assert sorted(phones(channel="sms")) == ["010-****-0001", "010-****-0002"]
    assert len(phones(status="delivered")) == 3
    assert len(phones(status="failed")) == 1
    # and by the time the carrier accepted them (the invalid number was never sent)
    now = datetime.now(UTC)
    window = {"sent_from": (now - timedelta(minutes=10)).isoformat(), "sent_to": now.isoformat()}
    assert len(phones(**window)) == 3
    assert phones(sent_to="2020-01-01T00:00:00") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"channel": "fax"}, "channel"),
        ({"sent_from": "yesterday"}, "sent_from"),
        ({"status": "lost"}, "status"),
    ],
)
def test_bad_recipient_filters_are_refused_naming_the_field(
    stack: Stack, params: dict[str, Any], field: str
) -> None:
    client = stack.new_tenant(f"recipient-bad-{field}")
    job_id = submit_sms(client, "안내", ["010-7300-0001"])
    response = client.get(f"/v1/jobs/{job_id}/recipients", params=params)
    assert response.status_code == 422, response.text
    assert problem(response)["field"] == field
