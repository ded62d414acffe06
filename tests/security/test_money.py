"""Money is minted only by the platform (issue 20).

Given tenants with every scope a tenant key can hold, when they try to add points to a balance
or to make themselves a key that could, then they are refused; the platform operator's CLI and
platform keys can, and only with an amount written as plain decimal digits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from decimal import Decimal

import httpx
import psycopg
import pytest

from engine.accounts import billing
from engine.accounts.platform_keys import create_platform_key
from engine.accounts.tenants import create_api_key, tenant_id_by_name
from tests.support.problems import problem
from tests.support.services import settings_env
from tests.support.stack import Stack

#: What a security review got accepted as an amount, and its neighbours: none is money.
MALFORMED_AMOUNTS = [
    "1e9",
    "1E+3",
    "1_000",
    "１０",  # fullwidth digits
    "١٠",  # Arabic-Indic digits
    "-5",
    "0",
    "0.00",
    "1.234",
    " 10",
    "10 ",
    "10\n",
    "10.",
    ".5",
    "+10",
    "NaN",
    "Infinity",
    "",
    "1000000000.01",
    "99999999999999",
]


def name() -> str:
    return f"money-{uuid.uuid4().hex[:8]}"


def api_client(stack: Stack, key: str) -> httpx.Client:
    client = httpx.Client(
        base_url=stack.settings.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    stack.clients.append(client)
    return client


def platform_client(stack: Stack) -> httpx.Client:
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        return api_client(stack, create_platform_key(conn, "billing-test"))


def balsong(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(stack.settings)}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True, timeout=120
    )


# -- the amount ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", MALFORMED_AMOUNTS)
def test_an_amount_is_plain_ascii_digits_with_at_most_two_decimals(text: str) -> None:
    # Given an amount written any way but plain digits, when it is parsed, then it is refused
    with pytest.raises(ValueError):
        billing.parse_amount(text)


@pytest.mark.parametrize("value", [10, 10.5, None, True, ["10"]])
def test_an_amount_is_a_string(value: object) -> None:
    # Given a JSON number or anything else that is not a string, then it is refused
    with pytest.raises(ValueError):
        billing.parse_amount(value)


def test_plain_amounts_are_read_exactly() -> None:
    # Given plain amounts, when parsed, then they are the exact decimals written
    assert billing.parse_amount("10") == Decimal("10")
    assert billing.parse_amount("250.5") == Decimal("250.50")
    assert billing.parse_amount("0.01") == Decimal("0.01")
    assert billing.parse_amount("1000000000") == billing.MAX_AMOUNT
    # And only an adjustment may be negative
    assert billing.parse_amount("-120.50", signed=True) == Decimal("-120.50")
    with pytest.raises(ValueError):
        billing.parse_amount("--1", signed=True)


# -- who may top up ------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_tenant_admin_key_cannot_top_up_its_own_balance(stack: Stack) -> None:
    # Given a tenant whose key holds every tenant scope, admin included, and an empty balance
    tenant = name()
    admin = stack.new_tenant(tenant, scopes=("send", "read", "export:unmasked", "admin"), balance=Decimal(0))

    # When it tops itself up, as the review did, with and without naming itself
    refused = [
        admin.post("/v1/balance/top-ups", json=body)
        for body in ({"amount": "1e9"}, {"amount": "1000"}, {"tenant": tenant, "amount": "1000"})
    ]

    # Then every attempt is refused with 403, and the balance is still zero
    assert [r.status_code for r in refused] == [403, 403, 403], [r.text for r in refused]
    assert all(problem(r)["code"] == "forbidden" for r in refused)
    assert admin.get("/v1/balance").json()["balance"] == "0.00"


@pytest.mark.integration
def test_a_tenant_admin_key_cannot_mint_a_platform_key(stack: Stack) -> None:
    # Given a tenant's admin key
    tenant = name()
    admin = stack.new_tenant(tenant, scopes=("admin",), balance=Decimal(0))

    # When it asks for a key with the platform scope, alone or among others
    asked = [
        admin.post("/v1/keys", json={"scopes": scopes}) for scopes in (["platform"], ["admin", "platform"])
    ]

    # Then it is refused, and no key of the tenant carries that scope
    assert [r.status_code for r in asked] == [403, 403], [r.text for r in asked]
    assert all("platform" not in key["scopes"] for key in admin.get("/v1/keys").json()["keys"])

    # When it rotates its own admin key, then the replacement cannot top up either
    own_id = admin.get("/v1/keys").json()["keys"][0]["id"]
    rotated = admin.post(f"/v1/keys/{own_id}/rotate")
    assert rotated.status_code == 201, rotated.text
    replacement = api_client(stack, rotated.json()["key"])
    assert replacement.post("/v1/balance/top-ups", json={"tenant": tenant, "amount": "1"}).status_code == 403

    # And not even the operator's CLI, nor a row written by hand, gives a tenant key that scope
    for command in (["key", "create", tenant], ["tenant", "create", name()]):
        cli = balsong(stack, *command, "--scopes", "admin,platform")
        assert cli.returncode == 2 and "platform" in cli.stderr, cli.stderr
    made = balsong(stack, "tenant", "create", name(), "--scopes", "send,read,admin")
    assert made.returncode == 0 and made.stdout.startswith("bsk_"), made.stderr
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO api_keys (tenant_id, key_hash, key_prefix, scopes)"
                " VALUES (%s, 'x', 'x', ARRAY['platform'])",
                (tenant_id_by_name(conn, tenant),),
            )
        # (the scope check of the engine itself, below the API)
        with pytest.raises(ValueError):
            create_api_key(conn, tenant_id_by_name(conn, tenant), ("platform",))


@pytest.mark.integration
@pytest.mark.parametrize("amount", MALFORMED_AMOUNTS)
def test_a_malformed_amount_is_refused_naming_the_field(stack: Stack, amount: str) -> None:
    # Given the platform operator's key and a tenant
    tenant = name()
    client = stack.new_tenant(tenant, balance=Decimal(0))
    platform = platform_client(stack)

    # When a top-up's amount is not plain decimal digits
    response = platform.post("/v1/balance/top-ups", json={"tenant": tenant, "amount": amount})

    # Then it is refused with 422 naming the field amount, and nothing is added
    assert response.status_code == 422, response.text
    assert problem(response)["field"] == "amount"
    assert client.get("/v1/balance").json()["balance"] == "0.00"


@pytest.mark.integration
def test_the_platform_key_tops_up_any_tenant_and_a_revoked_one_cannot(stack: Stack) -> None:
    # Given two tenants and a platform key made by the operator's CLI
    first, second = name(), name()
    first_client = stack.new_tenant(first, balance=Decimal(0))
    second_client = stack.new_tenant(second, balance=Decimal(0))
    made = balsong(stack, "platform-key", "create", "billing-service")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("bsp_")
    platform = api_client(stack, key)

    # When it tops both up
    one = platform.post("/v1/balance/top-ups", json={"tenant": first, "amount": "500.5", "memo": "invoice 7"})
    two = platform.post("/v1/balance/top-ups", json={"tenant": second, "amount": "20"})

    # Then each balance grows by its amount, recorded in the ledger with the memo
    assert (one.status_code, one.json()) == (201, {"balance": "500.50", "added": "500.50"}), one.text
    assert two.status_code == 201, two.text
    assert first_client.get("/v1/balance").json()["balance"] == "500.50"
    assert second_client.get("/v1/balance").json()["balance"] == "20.00"
    entry = first_client.get("/v1/ledger").json()["entries"][0]
    assert (entry["kind"], entry["amount"], entry["memo"]) == ("top_up", "500.50", "invoice 7")

    # And a platform key is no tenant key: it reads and sends nothing
    assert platform.get("/v1/balance").status_code == 401
    # And an unknown tenant is not found
    assert platform.post("/v1/balance/top-ups", json={"tenant": name(), "amount": "1"}).status_code == 404

    # When the key is revoked, then it is refused at once
    key_id = next(
        line.split()[0]
        for line in balsong(stack, "platform-key", "list").stdout.splitlines()
        if key[:10] in line
    )
    assert balsong(stack, "platform-key", "revoke", key_id).returncode == 0
    assert platform.post("/v1/balance/top-ups", json={"tenant": first, "amount": "1"}).status_code == 401
    assert first_client.get("/v1/balance").json()["balance"] == "500.50"


@pytest.mark.integration
def test_the_cli_tops_up_and_adjusts_plain_amounts_only(stack: Stack) -> None:
    # Given a tenant
    tenant = name()
    client = stack.new_tenant(tenant, balance=Decimal(0))

    # When the operator tops it up and corrects it with the CLI
    topped = balsong(stack, "tenant", "top-up", tenant, "1000", "--memo", "bank transfer")
    adjusted = balsong(stack, "tenant", "adjust", tenant, "-120.50", "double charge corrected")

    # Then the balance is what they say
    assert topped.returncode == 0, topped.stderr
    assert adjusted.returncode == 0, adjusted.stderr
    assert client.get("/v1/balance").json()["balance"] == "879.50"

    # When an amount is not plain digits, then the CLI refuses it and adds nothing
    for amount in ("1e9", "1_000", "１０", "1.234", "0"):
        refused = balsong(stack, "tenant", "top-up", tenant, amount)
        assert refused.returncode == 2 and "amount" in refused.stderr, (amount, refused.stderr)
    assert client.get("/v1/balance").json()["balance"] == "879.50"
