"""The job request read as it arrives (`engine.intake.job_request`), without a server.

Given a job request body cut into chunks anywhere, when it is fed to the reader, then it reads
the same fields and recipients as orjson does on the whole body; and a body that cannot be
accepted is refused as soon as the bytes that show it have arrived, not at the end.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ValidationError
from engine.intake import job_request
from engine.intake.job_request import JobRequestReader

#: Text with what could be taken for a boundary between recipients ("},{", "}]") inside strings.
TEXT = st.lists(
    st.sampled_from(
        ["a", "가", " ", "}", ",", "{", "]", "[", '"', "\\", ":", "\n", "\x01", "},{", "}, {", "}]"]
    ),
    max_size=8,
).map("".join)
RECIPIENT = st.fixed_dictionaries(
    {"phone": TEXT},
    optional={"variables": st.dictionaries(TEXT, TEXT, max_size=3), "member_id": TEXT},
)
REQUEST = st.fixed_dictionaries(
    {},
    optional={
        "channel": TEXT,
        "body": TEXT,
        "title": st.none() | TEXT,
        "fallback": st.dictionaries(
            TEXT, st.lists(TEXT | st.integers(-(2**31), 2**31), max_size=3), max_size=3
        ),
        "track_links": st.booleans(),
        "recipients": st.lists(RECIPIENT, max_size=20),
    },
)


def read(body: bytes, cuts: list[int], max_recipients: int = 1_000_000) -> dict[str, Any]:
    reader = JobRequestReader(max_recipients)
    start = 0
    for cut in [*sorted(cuts), len(body)]:
        reader.feed(body[start:cut])
        start = cut
    request = reader.finish()
    assert request.body_sha256 == hashlib.sha256(body).digest()
    fields = dict(request.fields)
    if isinstance(fields.get("recipients"), job_request.RecipientSegments):
        fields["recipients"] = list(fields["recipients"])
    return fields


@settings(max_examples=300, deadline=None)
@given(request=REQUEST, indent=st.booleans(), data=st.data())
def test_any_request_cut_anywhere_reads_as_orjson_reads_it_whole(
    request: dict[str, Any], indent: bool, data: st.DataObject
) -> None:
    # Given a request body, pretty-printed or not, cut at arbitrary places, and tiny segments
    body = orjson.dumps(request, option=orjson.OPT_INDENT_2 if indent else 0)
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=8))
    segment = data.draw(st.sampled_from([1, 16, 1 << 20]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(job_request, "SEGMENT_BYTES", segment)
        # When it is read chunk by chunk, then it is what orjson reads from the whole body
        assert read(body, cuts) == orjson.loads(body)


def test_an_unknown_field_is_refused_at_its_name_before_its_value() -> None:
    # Given a reader that has had a valid start and then the name of an unknown field
    reader = JobRequestReader(1000)
    reader.feed(b'{"channel":"sms","recipients":[{"phone":"01012345678"}],')
    # When the name arrives (its 190 MB value not yet sent), then it is refused, named
    with pytest.raises(ValidationError) as refused:
        reader.feed(b'"junk":"xxxx')
    assert (refused.value.field, refused.value.code) == ("junk", "unknown_field")


def test_a_known_field_longer_than_its_limit_is_refused_while_it_arrives() -> None:
    reader = JobRequestReader(1000)
    reader.feed(b'{"body":"')
    with pytest.raises(ValidationError) as refused:
        for _ in range(job_request.FIELD_MAX_BYTES // 1024 + 2):
            reader.feed(b"x" * 1024)
    assert refused.value.field == "body"


def test_too_many_recipients_are_refused_once_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a limit of 10 recipients and segments of ~100 bytes, recipients one per line
    monkeypatch.setattr(job_request, "SEGMENT_BYTES", 100)
    reader = JobRequestReader(10)
    reader.feed(b'{"recipients":[')
    # When recipients keep coming, then the 11th is refused before the list ends
    with pytest.raises(ValidationError) as refused:
        for i in range(1000):
            reader.feed(b'{"phone":"010%08d"},\n' % i)
    assert refused.value.field == "recipients"


def test_too_many_compact_recipients_are_refused_exactly_as_they_are_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given compact JSON (cut at "},{" without parsing) of 11 recipients, one with "},{" in it
    monkeypatch.setattr(job_request, "SEGMENT_BYTES", 20)
    phones = [{"phone": f"010{i:08d}"} for i in range(10)] + [{"phone": "},{},{"}]
    for limit, refused in ((11, False), (10, True)):
        reader = JobRequestReader(limit)
        body = orjson.dumps({"recipients": phones})
        for i in range(0, len(body), 7):
            reader.feed(body[i : i + 7])
        recipients = reader.finish().fields["recipients"]
        # When they are decoded, then the 11th is refused only under a limit of 10
        if refused:
            with pytest.raises(ValidationError):
                list(recipients)
        else:
            assert list(recipients) == phones


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[1]", "body"),
        (b"", "body"),
        (b'{"recipients":["01012345678"]}', "recipients[0]"),
        (b'{"recipients":[{"phone":"1"},"2"]}', "recipients[1]"),
        (b'{"recipients":[{"phone":010}]}', "recipients"),
        (b'{"recipients":[{"phone":"1"}', "body"),
        (b'{"body":"x","body":"y"}', "body"),
        (b'{"body":"x"} trailing', "body"),
        (b'{"body":"x",}', "body"),
    ],
)
def test_a_malformed_body_is_refused_naming_where(body: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        read(body, [len(body) // 2])
    assert refused.value.field == field


def test_the_fields_read_are_the_fields_the_api_documents() -> None:
    from api.jobs import JOB_REQUEST_SCHEMA

    assert set(JOB_REQUEST_SCHEMA["properties"]) == job_request.FIELDS
