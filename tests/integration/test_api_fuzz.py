"""schemathesis against the OpenAPI document of the running API, signed in as a tenant.

Given the whole of balsong running, when every documented operation is called with requests
generated from its own schema (valid and invalid), some with a hostile value put in one query
parameter, path parameter or JSON string (control characters, dates at the ends of what
``datetime`` holds, non-ASCII digits, overlong numbers), then none answers 5xx, every status
answered is one the document lists for the operation, no answer breaks the schema, media type or
headers published for it (errors: the Problem schema, ``application/problem+json``), and every
request that breaks the operation's schema (an unknown field among them) is refused with a 4xx.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine.keys import Keys
from engine.redis_client import make_redis
from tests.support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Values put in place of one generated string: control characters (PostgreSQL cannot store a
#: NUL), dates at and past the ends of ``datetime``, digits that are not ASCII, a number longer
#: than ``int()`` reads.
HOSTILE_VALUES = (
    "\x00",
    "a\x00b",
    "\x01",
    "\x1f",
    "\x7f",
    "\x85",
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59-09:00",
    "9999-12",
    "²",
    "١٢٣",
    "9" * 5000,
)
HOSTILE = st.sampled_from(HOSTILE_VALUES)


def with_hostile_value(values: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any] | None]:
    """``values`` as generated, or with one of them replaced by a hostile value."""
    if not values:
        return st.just(values)
    replaced = st.sampled_from(sorted(values)).flatmap(
        lambda name: HOSTILE.map(lambda v: {**values, name: v})
    )
    return st.one_of(st.just(values), replaced)


def string_paths(value: Any) -> list[tuple[Any, ...]]:
    """The key path of every string in a JSON value."""
    if isinstance(value, str):
        return [()]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return [(key, *rest) for key, item in items for rest in string_paths(item)]


def put(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = put(value[path[0]], path[1:], new)
    return copy


def flatmap_query(context: Any, query: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any] | None]:
    return with_hostile_value(query)


def flatmap_path_parameters(
    context: Any, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    return with_hostile_value(path_parameters)


def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    paths = string_paths(body)
    if not paths:
        return st.just(body)
    replaced = st.sampled_from(paths).flatmap(lambda path: HOSTILE.map(lambda v: put(body, path, v)))
    return st.one_of(st.just(body), replaced)


@pytest.fixture(scope="module", autouse=True)
def sign_in_throttle_forgotten_after(stack: Stack) -> Iterator[None]:
    """The fuzzing's made-up keys count as failed sign-ins from this machine's address, which the
    throttle then refuses for minutes: later tests of the session (the console's, the slow run's)
    would get 429. Forget the counters once the fuzzing is done."""
    yield
    redis = make_redis(stack.settings.redis_url)
    keys = Keys(stack.settings.redis_prefix)
    try:
        for kind in ("client", "prefix"):
            for key in redis.scan_iter(match=keys.sign_in(kind, "*"), count=1000):
                redis.delete(key)
    finally:
        redis.close()


@pytest.fixture(scope="module")
def fuzzed_tenant(stack: Stack) -> dict[str, str]:
    """Headers of a tenant with every scope but admin: fuzzing must not revoke its own key."""
    client = stack.new_tenant("fuzz", scopes=("send", "read", "export:unmasked"))
    return {"Authorization": str(client.headers["Authorization"])}


def test_no_operation_answers_5xx_or_breaks_its_schema(stack: Stack, fuzzed_tenant: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.settings.api_url}/openapi.json")
    for hook in (flatmap_query, flatmap_path_parameters, flatmap_body):
        schema.hooks.register_hook_with_name(hook, hook.__name__)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10
    hostile_sent: list[str] = []
    for operation, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def call(case: Any) -> None:
            case.call_and_validate(
                headers=fuzzed_tenant,
                checks=[
                    not_a_server_error,
                    status_code_conformance,
                    response_schema_conformance,
                    content_type_conformance,
                    response_headers_conformance,
                    negative_data_rejection,
                ],
            )
            sent = repr((case.query, case.path_parameters, case.body))
            hostile_sent.extend(value for value in HOSTILE_VALUES if repr(value)[1:-1] in sent)

        try:
            call()
        except Unsatisfiable:
            # An operation with nothing to get wrong (no parameters, no body) has no invalid cases.
            assert mode is GenerationMode.NEGATIVE, operation.label
    # The hostile values did go out (a NUL, an out-of-range date), not just the schema's own
    assert {"\x00", "9999-12-31T23:59:59-09:00"} <= set(hostile_sent)
