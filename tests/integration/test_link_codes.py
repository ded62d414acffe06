"""Short codes of tracked links as stored at intake: one per recipient and link, matching what
the recipient is sent, and drawn again when one collides with an existing code."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest

from engine.accounts.billing import top_up
from engine.accounts.tenants import add_sender, create_tenant
from engine.config import Settings
from engine.intake.intake import prepare_job
from tests.support.stored_jobs import store_prepared

pytestmark = pytest.mark.integration

BASE = "https://bs.example"


def tracked(count: int) -> dict[str, Any]:
    return {
        "channel": "auto",
        "sender": "02-1234-5678",
        "body": "보세요 https://a.example/1 그리고 https://b.example/2",
        "track_links": True,
        "recipients": [{"phone": f"010-7777-{i:04d}"} for i in range(count)],
    }


def test_codes_match_what_recipients_are_sent_and_a_collision_draws_new_ones(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id = create_tenant(conn, "link-codes")
        add_sender(conn, tenant_id, "0212345678")
        top_up(conn, tenant_id, Decimal(10_000))
        # Given a stored tracked job, and a second one whose first code is already taken by it
        first = prepare_job(tracked(1), max_recipients=10, link_base_url=BASE)
        first_job = store_prepared(conn, settings, tenant_id, first).job_id
        taken = conn.execute("SELECT code FROM link_codes WHERE job_id = %s LIMIT 1", (first_job,)).fetchone()
        assert taken is not None
        second = prepare_job(tracked(3), max_recipients=10, link_base_url=BASE)
        row = second.valid_rows()[0]
        assert row.links is not None and row.values is not None
        row.links = (taken[0], row.links[1])
        row.values = (f"{BASE}/r/{taken[0]}", row.values[1])

        # When it is stored
        job_id = store_prepared(conn, settings, tenant_id, second).job_id

        # Then each recipient has one code per link, every code unique, and the short URLs in its
        # stored values are exactly its codes
        codes = conn.execute(
            "SELECT seq, code, url FROM link_codes WHERE job_id = %s ORDER BY seq, url", (job_id,)
        ).fetchall()
        values = dict(
            conn.execute('SELECT seq, "values" FROM recipients WHERE job_id = %s', (job_id,)).fetchall()
        )
    assert len(codes) == 6
    assert taken[0] not in {code for _, code, _ in codes}
    for seq, code, url in codes:
        index = 0 if url == "https://a.example/1" else 1
        assert values[seq][index] == f"{BASE}/r/{code}"
