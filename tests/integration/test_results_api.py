"""What Korean SMS services' results pages offer, through the API: the job list as CSV
(발송 자료, ``GET /v1/jobs/export``), the history's new fields, and where one number was sent to
(수신번호 검색, ``GET /v1/recipients``) — answered by index, bounded to 31 days.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from engine.clock import KST
from engine.reporting import phone_search
from engine.reporting.retention import deletion_at
from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import Stack, submit_sms

pytestmark = pytest.mark.integration


def rows_of(content: bytes) -> list[dict[str, str]]:
    assert content.startswith("\ufeff".encode()), content[:20]
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def today() -> str:
    return datetime.now(KST).date().isoformat()


def test_the_job_list_downloads_as_csv_with_send_times_points_and_origin(stack: Stack) -> None:
    # Given two finished jobs of a tenant (one with a formula-like body and a bad number) and another tenant's
    client = stack.new_tenant("results-export")
    other = stack.new_tenant("results-export-other")
    plain = submit_sms(client, "배송 안내", ["010-6100-0001"])
    formula = submit_sms(client, '=HYPERLINK("http://x")', ["010-6100-0002", "010-12"])
    foreign = submit_sms(other, "남의 작업", ["010-6100-0003"])
    for job_id in (plain, formula):
        wait_finished(stack, client, job_id)

    # When the tenant downloads the job list of today
    response = client.get("/v1/jobs/export", params={"created_from": today(), "created_to": today()})

    # Then it is a CSV for Excel, streamed, of exactly the tenant's jobs, newest first
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    rows = rows_of(response.content)
    assert [int(row["작업 ID"]) for row in rows] == [formula, plain]
    assert str(foreign) not in {row["작업 ID"] for row in rows}
    # with the send time, kind, channel, sender, content, counts, points and origin as the job says them
    job = client.get(f"/v1/jobs/{formula}").json()
    row = rows[0]
    sent = datetime.fromisoformat(job["sent_at"]).astimezone(KST)
    assert row["발송 일시(KST)"] == f"{sent:%Y-%m-%d %H:%M:%S}"
    assert (row["유형"], row["채널"], row["발신번호"], row["상태"]) == (
        "수동",
        "SMS",
        "0212345678",
        "일부 실패",
    )
    assert row["내용"] == "'" + '=HYPERLINK("http://x")'  # formula-guarded
    assert (row["총 건수"], row["성공"], row["실패"]) == ("2", "1", "1")
    assert row["차감 포인트"] == job["charges"]["charged"]
    assert row["환불 포인트"] == job["charges"]["refunded"]
    assert row["접수 경로"] == "API"
    created = datetime.fromisoformat(job["created_at"])
    expected_deletion = deletion_at(created, stack.settings.retention_days).astimezone(KST)
    assert row["결과 삭제 예정일(KST)"] == f"{expected_deletion:%Y-%m-%d}"

    # And the history's JSON carries the same points and origin
    listed = {j["id"]: j for j in client.get("/v1/jobs").json()["jobs"]}
    assert listed[formula]["charged"] == job["charges"]["charged"]
    assert listed[formula]["origin"] == "api"

    # And a day with no jobs gives the header alone; a bad format or date is a 422 naming it
    empty = client.get("/v1/jobs/export", params={"created_to": "2020-01-01"})
    assert empty.status_code == 200 and rows_of(empty.content) == []
    assert problem(client.get("/v1/jobs/export", params={"format": "xlsx"}))["field"] == "format"
    assert (
        problem(client.get("/v1/jobs/export", params={"created_from": "2026-13-01"}))["field"]
        == "created_from"
    )


def test_the_job_list_export_needs_the_read_scope(stack: Stack) -> None:
    sender_only = stack.new_tenant("results-export-scope", scopes=("send",))
    assert sender_only.get("/v1/jobs/export").status_code == 403
    assert sender_only.get("/v1/recipients", params={"phone": "010-6100-0001"}).status_code == 403


def test_a_number_is_found_across_the_tenants_jobs_and_nowhere_else(stack: Stack) -> None:
    # Given one number in two jobs of a tenant, a third job without it, and another tenant's job with it
    client = stack.new_tenant("results-search")
    other = stack.new_tenant("results-search-other")
    number = "010-6200-4321"
    first = submit_sms(client, "첫 번째", [number, "010-6200-0001"])
    second = submit_sms(client, "두 번째", ["010-6200-0002", number])
    without = submit_sms(client, "세 번째", ["010-6200-0003", "010-6201-4321"])  # same last four
    submit_sms(other, "남의 작업", [number])
    for job_id in (first, second, without):
        wait_finished(stack, client, job_id)

    # When the tenant searches for the number (any form intake accepts)
    response = client.get("/v1/recipients", params={"phone": "01062004321", "from": today(), "to": today()})

    # Then it gets the two rows, newest job first, masked, with their jobs and outcomes
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["phone"] == "010-****-4321" and found["truncated"] is False
    assert [(r["job"]["id"], r["seq"]) for r in found["recipients"]] == [(second, 1), (first, 0)]
    assert all(r["phone"] == "010-****-4321" and r["status"] == "delivered" for r in found["recipients"])
    assert found["recipients"][0]["job"]["body"] == "두 번째"
    assert "4321" not in json.dumps(found).replace("****-4321", "")

    # And the range defaults to the 31 days ending today
    assert client.get("/v1/recipients", params={"phone": number}).json()["recipients"] == found["recipients"]


def test_a_search_is_bounded_and_takes_only_a_whole_number(stack: Stack) -> None:
    client = stack.new_tenant("results-search-bounds")
    wider = client.get(
        "/v1/recipients", params={"phone": "010-6300-0001", "from": "2026-11-01", "to": "2026-12-02"}
    )
    assert wider.status_code == 422 and problem(wider)["field"] == "to"
    assert "31" in problem(wider)["detail"]
    assert problem(client.get("/v1/recipients", params={"phone": "0001"}))["field"] == "phone"
    assert problem(client.get("/v1/recipients"))["field"] == "phone"
    assert (
        problem(client.get("/v1/recipients", params={"phone": "010-6300-0001", "from": "x"}))["field"]
        == "from"
    )


def index_names(plan: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.add(plan["Index Name"])
        for value in plan.values():
            found |= index_names(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= index_names(value)
    return found


def scanned_relations(plan: Any) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add((plan["Node Type"], plan["Relation Name"]))
        for value in plan.values():
            found |= scanned_relations(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= scanned_relations(value)
    return found


def test_the_search_reads_recipients_by_the_last_four_digits_index(stack: Stack) -> None:
    # Given a job with the number
    client = stack.new_tenant("results-search-plan")
    job_id = submit_sms(client, "인덱스", ["010-6400-1234"])
    wait_finished(stack, client, job_id)
    tenant_id = _tenant_of(stack, job_id)
    end = datetime.now(KST) + timedelta(days=1)
    params = {
        "tenant": tenant_id,
        "phone": "01064001234",
        "last4": "1234",
        "start": end - timedelta(days=phone_search.MAX_DAYS),
        "end": end,
        "limit": 501,
    }
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        # When PostgreSQL plans the search with sequential scans priced out (the test's tables are
        # tiny; a production month is not), then the recipients come from recipients_phone_last4's
        # partitions: the query's shape can use the index
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute("EXPLAIN (FORMAT JSON) " + phone_search._SEARCH, params).fetchone()[0]  # type: ignore[index]
        partition_indexes = {
            str(row[0])
            for row in conn.execute("SELECT relid::regclass FROM pg_partition_tree('recipients_phone_last4')")
        }
    used = index_names(plan)
    assert used & partition_indexes, json.dumps(plan)[:2000]
    assert not {
        rel for node, rel in scanned_relations(plan) if node == "Seq Scan" and rel.startswith("recipients")
    }
    # And only the range's months are planned (partition pruning on job_created_at)
    months = {rel for _, rel in scanned_relations(plan) if rel.startswith("recipients_")}
    assert months and len(months) <= 3, months


def _tenant_of(stack: Stack, job_id: int) -> int:
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        row = conn.execute("SELECT tenant_id FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return int(row[0])
