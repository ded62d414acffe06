"""schemathesis against the OpenAPI document of the running API, signed in as a tenant.

Given the whole of balsong running, when every documented operation is called with requests
generated from its own schema (valid and invalid), then none answers 5xx and no answer breaks
the schema the API publishes for it.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def fuzzed_tenant(stack: Stack) -> dict[str, str]:
    """Headers of a tenant with every scope but admin: fuzzing must not revoke its own key."""
    client = stack.new_tenant("fuzz", scopes=("send", "read", "export:unmasked"))
    return {"Authorization": str(client.headers["Authorization"])}


def test_no_operation_answers_5xx_or_breaks_its_schema(stack: Stack, fuzzed_tenant: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.settings.api_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10
    for operation, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def call(case: Any) -> None:
            case.call_and_validate(
                headers=fuzzed_tenant,
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            )

        try:
            call()
        except Unsatisfiable:
            # An operation with nothing to get wrong (no parameters, no body) has no invalid cases.
            assert mode is GenerationMode.NEGATIVE, operation.label
