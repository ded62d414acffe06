"""Send statements (발송내역서): counts in PostgreSQL, then HTML and PDF through the real API."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from engine.accounts import billing
from engine.accounts.tenants import create_tenant, tenant_id_by_name
from engine.clock import KST
from engine.config import Settings
from engine.reporting.statement import ChannelCounts, job_statement, monthly_statement
from tests.support.problems import problem
from tests.support.results import seed_job
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def test_a_job_statement_counts_messages_by_channel_and_result(settings: Settings) -> None:
    # Given a finished Kakao job: 1 delivered, 1 failed, 2 handed to SMS/LMS (1 delivered, 1 failed
    # there), 2 refused at intake
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id = create_tenant(conn, "statement-counts")
        job_id = seed_job(conn, tenant_id)

        # When its statement is made
        statement = job_statement(conn, tenant_id, job_id, NOW)

    # Then messages are counted by channel as carriers count them, refusals on their own line
    assert statement.tenant == "statement-counts"
    assert statement.channels == (
        ChannelCounts("sms", delivered=1),
        ChannelCounts("lms", failed=1),
        ChannelCounts("kakao", delivered=1, failed=1, fallback=2),
        ChannelCounts(None, failed=2),
    )
    assert statement.totals.total == 8
    assert statement.recipients == 6
    # And failures are grouped by channel and reason, most frequent first, then by code
    assert [(r.channel, r.reason_code, r.count) for r in statement.reasons] == [
        ("kakao", "carrier_3019", 3),
        ("lms", "carrier_23", 1),
        (None, "invalid_character", 1),
        (None, "missing_variable", 1),
    ]
    # And a job never charged (no ledger rows) shows no charges: none are invented
    assert statement.charges == ()


def test_a_statement_shows_what_was_reserved_and_refunded(settings: Settings) -> None:
    # Given a job that reserved 54 points at intake and was refunded 18 at settlement
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id = create_tenant(conn, "statement-charges")
        job_id = seed_job(conn, tenant_id)
        billing.top_up(conn, tenant_id, Decimal(100))
        with conn.transaction():
            billing.reserve_job(conn, tenant_id, job_id, Decimal(54))
        with conn.transaction():
            billing.append(conn, tenant_id, "refund", Decimal(18), job_id=job_id)

        # When its statement is made
        statement = job_statement(conn, tenant_id, job_id, NOW)

    # Then it shows the reservation and the refund, which sum to what the tenant pays
    assert [(c.description[:5], c.amount) for c in statement.charges] == [
        ("발송 요금", Decimal(54)),
        ("미발송·실", Decimal(-18)),
    ]
    assert sum(c.amount for c in statement.charges) == Decimal(36)


def test_a_monthly_statement_covers_the_jobs_created_in_that_kst_month(settings: Settings) -> None:
    # Given jobs created at 23:59 KST on 31 October (14:59 UTC) and 09:00 KST on 1 October, and
    # one at 00:00 KST on 1 November (still 31 October in UTC, and in October's partition)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id = create_tenant(conn, "statement-month")
        seed_job(conn, tenant_id, datetime(2026, 10, 31, 14, 59, tzinfo=UTC))
        seed_job(conn, tenant_id, datetime(2026, 10, 1, 0, 0, tzinfo=UTC))
        seed_job(conn, tenant_id, datetime(2026, 10, 31, 15, 0, tzinfo=UTC))

        # When October's and November's statements are made
        october = monthly_statement(conn, tenant_id, "2026-10", NOW)
        november = monthly_statement(conn, tenant_id, "2026-11", NOW)

    # Then each month holds the jobs created in it by Korean time
    assert (october.jobs, october.recipients, october.totals.total) == (2, 12, 16)
    assert (november.jobs, november.recipients, november.totals.total) == (1, 6, 8)
    assert october.period_start == datetime(2026, 10, 1, tzinfo=KST)
    assert october.subject == "2026년 10월"


def test_statement_html_is_a_printable_korean_page(stack: Stack) -> None:
    # Given a tenant with a finished job
    client = stack.new_tenant("발송 테스트 <상점>")
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        job_id = seed_job(conn, tenant_id_by_name(conn, "발송 테스트 <상점>"))

    # When its statement is asked for as HTML
    response = client.get(f"/v1/statements/jobs/{job_id}")

    # Then it is a self-contained page with the title, tenant (escaped), counts and reasons
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<h1>발송내역서</h1>" in page
    assert "발송 테스트 &lt;상점&gt;" in page and "<상점>" not in page
    assert f"작업 #{job_id}" in page
    assert "채널별 발송 결과" in page and "실패 사유" in page
    assert "carrier_3019" in page and "카카오톡 사용자가 아님" in page
    assert "@media print" in page and "@page" in page
    # And no charges section, since the seeded job was never charged
    assert "요금" not in page


def test_statement_pdf_is_a_pdf_with_the_korean_text(stack: Stack) -> None:
    # Given a tenant with a finished job
    client = stack.new_tenant("pdf-shop")
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        job_id = seed_job(conn, tenant_id_by_name(conn, "pdf-shop"))
    created = datetime.now(UTC).astimezone(KST).strftime("%Y-%m")

    for url, params in (
        (f"/v1/statements/jobs/{job_id}", {"format": "pdf"}),
        ("/v1/statements/monthly", {"format": "pdf", "month": created}),
    ):
        # When a statement is asked for as PDF
        response = client.get(url, params=params)

        # Then it is a PDF whose text (read back by poppler) has the Korean labels and the tenant
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        assert response.content.startswith(b"%PDF-")
        text = subprocess.run(
            ["pdftotext", "-", "-"], input=response.content, capture_output=True, check=True
        ).stdout.decode()
        for expected in ("발송내역서", "pdf-shop", "채널별 발송 결과", "알림톡", "카카오톡 사용자가 아님"):
            assert expected in text, f"{expected!r} not in the PDF's text"


def test_statement_errors_name_the_field_and_hide_other_tenants(stack: Stack) -> None:
    # Given a job of one tenant and a second tenant
    owner = stack.new_tenant("statement-owner")
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        job_id = seed_job(conn, tenant_id_by_name(conn, "statement-owner"))
    stranger = stack.new_tenant("statement-stranger")

    # Then another tenant's job does not exist for the stranger
    assert stranger.get(f"/v1/statements/jobs/{job_id}").status_code == 404
    # And a malformed month or format is refused, naming the field
    for params, field in (({"month": "2026-13"}, "month"), ({"month": "11-2026"}, "month"), ({}, "month")):
        response = owner.get("/v1/statements/monthly", params=params)
        assert response.status_code == 422
        assert problem(response)["field"] == field
    response = owner.get(f"/v1/statements/jobs/{job_id}", params={"format": "docx"})
    assert response.status_code == 422
    assert problem(response)["field"] == "format"
