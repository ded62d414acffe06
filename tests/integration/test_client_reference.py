"""The caller's reference through the real API: stored, returned, filtered, exported."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import openpyxl
import pytest

from engine.reporting.exports import HEADER
from tests.support.stack import SENDER, Stack

pytestmark = pytest.mark.integration

#: A reference a spreadsheet would run as a formula, unguarded.
FORMULA_REFERENCE = '=HYPERLINK("http://evil.example")'


def submit(client: httpx.Client, recipients: list[dict[str, Any]], **fields: Any) -> httpx.Response:
    return client.post(
        "/v1/jobs",
        json={"channel": "sms", "sender": SENDER, "body": "주문 안내", "recipients": recipients, **fields},
    )


def accepted(response: httpx.Response) -> int:
    assert response.status_code == 202, response.text
    return int(response.json()["job_id"])


def field_of(response: httpx.Response) -> str | None:
    """The field a 422 names, wherever the error body keeps it."""
    body = response.json()
    return body.get("field") or body.get("error", {}).get("field")


def test_references_are_stored_returned_and_filtered(stack: Stack) -> None:
    # Given a job with its own reference whose recipients carry references (one none, one a bad number)
    client = stack.new_tenant("reference-api")
    job_id = accepted(
        submit(
            client,
            [
                {"phone": "010-7100-0001", "reference": "ORDER-1"},
                {"phone": "010-7100-0002", "reference": "주문 2"},
                {"phone": "010-7100-0003"},
                {"phone": "010-7100-0004", "reference": "ORDER-1"},
                {"phone": "010-71", "reference": "ORDER-5"},
            ],
            reference="campaign-7100",
        )
    )
    other = accepted(submit(client, [{"phone": "010-7100-0009"}], reference="campaign-other"))

    # When the job is read; Then it shows its reference
    assert client.get(f"/v1/jobs/{job_id}").json()["reference"] == "campaign-7100"

    # When its recipients are listed; Then each shows its own reference, in send order
    page = client.get(f"/v1/jobs/{job_id}/recipients").json()
    assert [r["reference"] for r in page["recipients"]] == ["ORDER-1", "주문 2", None, "ORDER-1", "ORDER-5"]

    # When they are filtered by a reference; Then exactly those with it come back
    found = client.get(f"/v1/jobs/{job_id}/recipients", params={"reference": "ORDER-1"}).json()
    assert [(r["seq"], r["phone"]) for r in found["recipients"]] == [
        (0, "010-****-0001"),
        (3, "010-****-0004"),
    ]
    refused = client.get(f"/v1/jobs/{job_id}/recipients", params={"reference": "ORDER-5"}).json()
    assert [r["reason_code"] for r in refused["recipients"]] == ["too_short"]
    assert (
        client.get(f"/v1/jobs/{job_id}/recipients", params={"reference": "order-1"}).json()["recipients"]
        == []
    )

    # When the history is filtered by a job reference; Then only that job is listed, with it
    listed = client.get("/v1/jobs", params={"reference": "campaign-7100"}).json()["jobs"]
    assert [(j["id"], j["reference"]) for j in listed] == [(job_id, "campaign-7100")]
    assert [
        j["id"] for j in client.get("/v1/jobs", params={"reference": "campaign-other"}).json()["jobs"]
    ] == [other]

    # When a filter breaks the rule of a reference; Then it is a 422 naming the parameter
    for params in ({"reference": "x" * 101}, {"reference": ""}, {"reference": "a\x01"}):
        for path in (f"/v1/jobs/{job_id}/recipients", "/v1/jobs"):
            response = client.get(path, params=params)
            assert response.status_code == 422, (path, params, response.text)
            assert field_of(response) == "reference"


def test_a_bad_reference_refuses_the_job_naming_the_field(stack: Stack) -> None:
    client = stack.new_tenant("reference-refused")
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"recipients": [{"phone": "010-7200-0001"}, {"phone": "010-7200-0002", "reference": "x" * 101}]},
            "recipients[1].reference",
        ),
        ({"recipients": [{"phone": "010-7200-0001", "reference": 42}]}, "recipients[0].reference"),
        ({"recipients": [{"phone": "010-7200-0001", "reference": "a\x00b"}]}, "recipients[0].reference"),
        ({"recipients": [{"phone": "010-7200-0001", "reference": ""}]}, "recipients[0].reference"),
        ({"reference": "x" * 101}, "reference"),
        ({"reference": ["a"]}, "reference"),
    ]
    for change, field in cases:
        body = {
            "channel": "sms",
            "sender": SENDER,
            "body": "안내",
            "recipients": [{"phone": "010-7200-0001"}],
        }
        response = client.post("/v1/jobs", json={**body, **change})
        assert response.status_code == 422, (change, response.text)
        assert field_of(response) == field
    # And nothing was stored
    assert client.get("/v1/jobs").json()["jobs"] == []


def test_exports_carry_the_reference_as_free_text(stack: Stack) -> None:
    # Given a job whose recipients carry references, one formula-like, one none
    client = stack.new_tenant("reference-export")
    job_id = accepted(
        submit(
            client,
            [
                {"phone": "010-7300-0001", "reference": "ORDER-1"},
                {"phone": "010-7300-0002", "reference": FORMULA_REFERENCE},
                {"phone": "010-7300-0003"},
            ],
        )
    )
    column = HEADER.index("고객 참조")
    assert column == len(HEADER) - 1

    # When it is exported as CSV; Then the last column holds each reference, formula-guarded
    response = client.get(f"/v1/jobs/{job_id}/export", params={"format": "csv"})
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert rows[0][column] == "고객 참조"
    assert [row[column] for row in rows[1:]] == ["ORDER-1", "'" + FORMULA_REFERENCE, ""]

    # When it is exported as XLSX; Then the same column holds them as text cells, unguarded
    response = client.get(f"/v1/jobs/{job_id}/export", params={"format": "xlsx"})
    assert response.status_code == 200, response.text
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    lines = list(sheet.iter_rows())
    assert lines[0][column].value == "고객 참조"
    cells = [line[column] for line in lines[1:]]
    assert [cell.value for cell in cells] == ["ORDER-1", FORMULA_REFERENCE, None]
    assert {cell.data_type for cell in cells[:2]} == {"s"}
