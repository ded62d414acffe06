"""A tenant's callback settings: its default URL (API and CLI) and its signing secrets, rotated
with an overlap (engine.callbacks.settings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from engine.accounts.tenants import create_tenant
from engine.callbacks.settings import (
    ROTATION_OVERLAP,
    current_secret,
    rotate_secret,
    secrets_in_force,
)
from engine.callbacks.signing import signature_header, verify
from engine.config import Settings
from tests.support.problems import problem
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def test_the_default_callback_url_is_set_by_an_admin_checked_and_cleared(stack: Stack) -> None:
    admin = stack.new_tenant("callback-admin", scopes=("send", "read", "admin"))
    reader = stack.new_tenant("callback-reader")
    # Given no default URL yet
    assert admin.get("/v1/callback").json() == {"url": None}
    # When an admin aims it at balsong's own API, or at the metadata address
    own = admin.put("/v1/callback", json={"url": f"{stack.settings.api_url}/v1/jobs"})
    metadata = admin.put("/v1/callback", json={"url": "https://169.254.169.254/latest"})
    # Then both are refused, naming the field and why
    assert own.status_code == metadata.status_code == 422
    assert problem(own)["field"] == "url" and "no callback may reach" in problem(metadata)["detail"]
    # And a key without the admin scope may read it but not set it; unknown fields are refused
    assert reader.put("/v1/callback", json={"url": None}).status_code == 403
    assert problem(admin.put("/v1/callback", json={"url": None, "urll": 1}))["field"] == "urll"
    # When it is cleared
    assert admin.put("/v1/callback", json={"url": None}).json() == {"url": None}
    assert admin.get("/v1/callback").json() == {"url": None}


def test_a_rotated_secret_keeps_the_old_one_valid_for_the_overlap(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        tenant_id = create_tenant(conn, "callback-secrets")
        now = datetime.now(UTC)
        # Given the tenant's secret, made on first use and stable
        first = current_secret(conn, tenant_id)
        assert first.startswith("whsec_") and current_secret(conn, tenant_id) == first
        assert secrets_in_force(conn, tenant_id, now) == [first]
        # When it is rotated
        second = rotate_secret(conn, tenant_id, now)
        # Then callbacks are signed with both, the new first, until the overlap ends
        assert secrets_in_force(conn, tenant_id, now) == [second, first]
        header = signature_header(secrets_in_force(conn, tenant_id, now), 1_700_000_000, b"{}")
        assert verify(header, b"{}", first, now=1_700_000_000) and verify(
            header, b"{}", second, now=1_700_000_000
        )
        later = now + ROTATION_OVERLAP + timedelta(seconds=1)
        assert secrets_in_force(conn, tenant_id, later) == [second]
