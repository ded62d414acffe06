"""The caller's reference on a recipient and on a job: what intake keeps and what it refuses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from engine.errors import ValidationError
from engine.intake.client_reference import MAX_LENGTH, check_reference
from engine.intake.intake import prepare_job
from engine.intake.job_request import JobRequestReader


def job(**change: Any) -> dict[str, Any]:
    return {
        "channel": "auto",
        "sender": "02-1234-5678",
        "body": "안녕하세요 #{name}님",
        "recipients": [{"phone": "010-1234-5678", "variables": {"name": "홍길동"}}],
        **change,
    }


def recipient(phone: str = "010-1234-5678", **fields: Any) -> dict[str, Any]:
    return {"phone": phone, "variables": {"name": "홍길동"}, **fields}


@dataclass
class ApprovedTemplate:
    content: str
    variables: tuple[str, ...]
    approved: bool = True


def test_each_recipient_keeps_its_reference_whatever_becomes_of_it() -> None:
    # Given recipients with references: SMS, LMS, a bad number, one missing its variable, none
    recipients = [
        recipient("010-1111-0001", reference="ORDER-1"),
        {"phone": "010-1111-0002", "variables": {"name": "가" * 60}, "reference": "주문 2"},
        recipient("010 12", reference="ORDER-3"),
        {"phone": "010-1111-0004", "variables": {}, "reference": "x" * MAX_LENGTH},
        recipient("010-1111-0005"),
        recipient("010-1111-0006", reference=None),
    ]
    # When the job is prepared
    prepared = prepare_job(job(recipients=recipients), max_recipients=10)
    # Then every row, sent or refused at intake, carries its own reference (or none)
    assert [(r.phone, r.reference) for r in prepared.sms] == [
        ("01011110001", "ORDER-1"),
        ("01011110005", None),
        ("01011110006", None),
    ]
    assert [r.reference for r in prepared.lms] == ["주문 2"]
    assert [(r.reason_code, r.reference) for r in prepared.invalid] == [
        ("too_short", "ORDER-3"),
        ("missing_variable", "x" * MAX_LENGTH),
    ]


def test_a_job_without_variables_and_a_kakao_job_keep_references_too() -> None:
    # Given the same text for everyone, and a KakaoTalk template
    fixed = prepare_job(job(body="안녕하세요", recipients=[recipient(reference="R1")]), max_recipients=10)
    kakao = prepare_job(
        {
            "channel": "kakao",
            "sender": "02-1234-5678",
            "template_code": "T1",
            "recipients": [recipient(reference="K1"), {"phone": "010-2222-0002", "reference": "K2"}],
        },
        max_recipients=10,
        kakao_template=lambda code: ApprovedTemplate("#{name}님 주문이 발송되었습니다", ("name",)),
    )
    # Then the rows carry them, the one refused for its missing variable included
    assert [r.reference for r in fixed.sms] == ["R1"]
    assert [r.reference for r in kakao.kakao] == ["K1"]
    assert [(r.reason_code, r.reference) for r in kakao.invalid] == [("missing_variable", "K2")]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("x" * (MAX_LENGTH + 1), f"longer than {MAX_LENGTH} characters"),
        ("", "must not be empty"),
        (12345, "must be a string"),
        (True, "must be a string"),
        (["ORDER-1"], "must be a string"),
        ({"id": 1}, "must be a string"),
        ("ORDER\x00-1", "must not contain control characters (found U+0000)"),
        ("ORDER\n1", "must not contain control characters (found U+000A)"),
        ("ORDER\x1b[31m", "must not contain control characters (found U+001B)"),
        ("ORDER\x85", "must not contain control characters (found U+0085)"),
    ],
)
def test_a_bad_recipient_reference_is_the_requests_error_naming_it(value: Any, reason: str) -> None:
    # Given a job whose second recipient's reference breaks the rule
    request = job(recipients=[recipient(reference="ok"), recipient("010-1234-5679", reference=value)])
    # When it is prepared; Then the whole request is refused, naming the field and why
    with pytest.raises(ValidationError) as refused:
        prepare_job(request, max_recipients=10)
    assert (refused.value.field, refused.value.reason) == ("recipients[1].reference", reason)


def test_a_bad_reference_on_a_refused_number_is_still_the_requests_error() -> None:
    # A bad number fails alone; a bad reference beside it is no number problem
    with pytest.raises(ValidationError) as refused:
        prepare_job(job(recipients=[recipient("010 12", reference="a\tb")]), max_recipients=10)
    assert refused.value.field == "recipients[0].reference"
    assert refused.value.code == "control_character"


def test_a_job_keeps_its_own_reference_under_the_same_rule() -> None:
    # Given a job-level reference; Then it is kept as given
    assert (
        prepare_job(job(reference="CAMPAIGN 2026-12 #7"), max_recipients=10).reference
        == "CAMPAIGN 2026-12 #7"
    )
    assert prepare_job(job(), max_recipients=10).reference is None
    assert prepare_job(job(reference=None), max_recipients=10).reference is None
    # And a bad one refuses the request, naming "reference"
    for value, code in (("x" * (MAX_LENGTH + 1), "invalid"), (7, "invalid"), ("a\x00", "control_character")):
        with pytest.raises(ValidationError) as refused:
            prepare_job(job(reference=value), max_recipients=10)
        assert (refused.value.field, refused.value.code) == ("reference", code)


def test_the_rule_counts_characters_not_bytes() -> None:
    # 100 Hangul syllables are 300 bytes of UTF-8 and 100 characters: kept
    assert check_reference("가" * MAX_LENGTH, "reference") == "가" * MAX_LENGTH
    # Ordinary spaces and punctuation are no control characters
    assert check_reference(" A-1/2 (3) ", "reference") == " A-1/2 (3) "


def test_the_streamed_reader_takes_a_top_level_reference() -> None:
    # Given a body whose fields (reference among them) arrive in small chunks
    body = (
        b'{"channel":"auto","reference":"JOB-1","sender":"02-1234-5678","body":"hi",'
        b'"recipients":[{"phone":"010-1234-5678","reference":"R-1"}]}'
    )
    reader = JobRequestReader(max_recipients=10)
    for start in range(0, len(body), 7):
        reader.feed(body[start : start + 7])
    request = reader.finish()
    # When it is prepared; Then both references come through
    prepared = prepare_job(request.fields, max_recipients=10)
    assert (prepared.reference, prepared.sms[0].reference) == ("JOB-1", "R-1")
