"""Guessing API keys is throttled per client and per key prefix, before any database lookup.

Given the running API, when a client sends wrong keys — to the console's sign-in or as an API
Bearer key — beyond the limit of its window, then the rest are refused with 429 and Retry-After
without being looked up; and a key that works is not locked out by someone else's flood.

Each test appears as client addresses of its own (X-Forwarded-For from loopback, which uvicorn
trusts) and uses key prefixes of its own, so no test shares a counter with another.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.security.support import browser, client_address, key_of, unique, wrong_key
from tests.support.problems import problem
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def sign_in(stack: Stack, key: str, address: str) -> httpx.Response:
    with browser(stack, address) as client:
        return client.post("/console/login", data={"api_key": key})


def assert_told_to_wait(stack: Stack, response: httpx.Response) -> None:
    assert response.status_code == 429, response.text[:200]
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= stack.settings.sign_in_window_seconds


def test_a_flood_of_wrong_sign_ins_from_one_client_gets_429_past_the_limit(stack: Stack) -> None:
    # Given a client that has failed no sign-in yet
    limit = stack.settings.sign_in_failures_per_client
    address = client_address()

    # When it sends three times its limit of wrong sign-ins at once, each with another key
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda _: sign_in(stack, wrong_key(), address), range(3 * limit)))

    # Then exactly `limit` were looked up and refused as wrong (401): places are taken atomically
    # in Redis before the lookup, so no more reach the database however many run at once
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {401: limit, 429: 2 * limit}, statuses
    # And the others were told, in Korean and in Retry-After, to wait
    for response in responses:
        if response.status_code == 429:
            assert_told_to_wait(stack, response)
            assert "로그인 시도가 너무 많습니다" in response.text


def test_someone_elses_flood_does_not_lock_out_another_client_or_a_key_in_use(stack: Stack) -> None:
    # Given a client that has used up its failures, and a tenant whose key is in use
    limit = stack.settings.sign_in_failures_per_client
    flooder = client_address()
    for _ in range(limit):
        assert sign_in(stack, wrong_key(), flooder).status_code == 401
    assert_told_to_wait(stack, sign_in(stack, wrong_key(), flooder))
    client = stack.new_tenant(unique("throttle-bystander"))
    assert client.get("/v1/jobs").status_code == 200

    # When the operator signs in with the right key from a client of their own, Then it works
    assert sign_in(stack, key_of(client), client_address()).status_code == 303
    # And even from the flooding client's address: a key found good lately is never throttled
    assert sign_in(stack, key_of(client), flooder).status_code == 303


def test_a_flood_on_one_key_prefix_from_many_clients_is_throttled_and_spares_the_key(stack: Stack) -> None:
    # Given a tenant's key in use, and someone who knows its visible prefix (`GET /v1/keys`)
    limit = stack.settings.sign_in_failures_per_key_prefix
    client = stack.new_tenant(unique("throttle-prefix"), scopes=("admin",))
    assert client.get("/v1/jobs").status_code == 200
    prefix = client.get("/v1/keys").json()["keys"][0]["prefix"]
    assert key_of(client).startswith(prefix)

    # When wrong keys with that prefix come from many clients, each failing once
    responses = [sign_in(stack, wrong_key(prefix), client_address()) for _ in range(limit + 3)]

    # Then past the prefix's limit they are refused with 429, though no client is over its own
    assert [r.status_code for r in responses] == [401] * limit + [429] * 3
    assert_told_to_wait(stack, responses[-1])
    # And the key's holder still signs in, and the API still takes the key
    assert sign_in(stack, key_of(client), client_address()).status_code == 303
    assert client.get("/v1/jobs").status_code == 200


def test_wrong_api_keys_are_throttled_like_sign_ins(stack: Stack) -> None:
    # Given a client that has sent no wrong key yet
    limit = stack.settings.sign_in_failures_per_client
    address = client_address()

    # When it calls the API with one wrong Bearer key after another, past its limit
    with httpx.Client(base_url=stack.settings.api_url, headers={"X-Forwarded-For": address}) as api:
        responses = [
            api.get("/v1/jobs", headers={"Authorization": f"Bearer {wrong_key()}"}) for _ in range(limit + 3)
        ]

    # Then the first `limit` are looked up and refused (401), the rest refused unlooked (429)
    assert [r.status_code for r in responses] == [401] * limit + [429] * 3
    for response in responses[limit:]:
        assert_told_to_wait(stack, response)
        assert problem(response)["code"] == "too_many_attempts"


def test_a_good_key_signed_in_between_guesses_earns_no_more_guesses(stack: Stack) -> None:
    # Given a client with a key of its own that works, and one failure short of its limit
    limit = stack.settings.sign_in_failures_per_client
    address = client_address()
    own = stack.new_tenant(unique("throttle-own-key"))
    assert own.get("/v1/jobs").status_code == 200
    for _ in range(limit - 1):
        assert sign_in(stack, wrong_key(), address).status_code == 401

    # When it signs in with its good key between guesses
    assert sign_in(stack, key_of(own), address).status_code == 303

    # Then that success took nothing off its failures: one more guess, and it must wait
    assert sign_in(stack, wrong_key(), address).status_code == 401
    assert_told_to_wait(stack, sign_in(stack, wrong_key(), address))
