"""Tracked links at intake: URLs become per-recipient short links, and the rewritten body's
EUC-KR length is what the SMS/LMS limits are checked against."""

from __future__ import annotations

from typing import Any

import pytest

from engine.attribution import links
from engine.errors import ValidationError
from engine.intake.encoding import encoded_length
from engine.intake.intake import prepare_job
from engine.intake.template import Template

BASE = "https://bs.example"
#: A short URL's length: "https://bs.example/r/" + 12 characters.
SHORT = len(links.sample_short_url(BASE))


def tracked_job(body: str, recipients: list[dict[str, Any]] | None = None, **change: Any) -> dict[str, Any]:
    return {
        "channel": "auto",
        "sender": "02-1234-5678",
        "body": body,
        "track_links": True,
        "recipients": recipients or [{"phone": "010-1234-5678"}],
        **change,
    }


def rendered(job: Any, row: Any) -> str:
    return Template.parse(job.body).render(row.values)


def test_each_distinct_url_becomes_a_hidden_variable_and_trailing_punctuation_stays_text() -> None:
    # Given a body with one URL twice, one followed by Korean text and one ending a sentence
    body = (
        "세일 https://shop.example/a?x=1에서 확인. 또 https://shop.example/b. 다시 https://shop.example/a?x=1"
    )

    # When it is rewritten
    tracked = links.rewrite_body(body)

    # Then two URLs are tracked, in order; the sentence's full stop and the Hangul stay outside
    assert tracked.urls == ("https://shop.example/a?x=1", "https://shop.example/b")
    assert tracked.body == "세일 #{__link1}에서 확인. 또 #{__link2}. 다시 #{__link1}"


def test_every_recipient_gets_its_own_unguessable_short_links() -> None:
    # Given a tracked job for three recipients with a name variable and one link
    recipients = [{"phone": f"010-1234-000{i}", "variables": {"name": f"고객{i}"}} for i in range(3)]

    # When it is prepared
    job = prepare_job(
        tracked_job("#{name}님 https://shop.example/sale", recipients), max_recipients=10, link_base_url=BASE
    )

    # Then each message carries the recipient's own short URL in place of the link
    codes = [row.links for row in job.valid_rows()]
    assert all(c is not None and len(c) == 1 for c in codes)
    flat = [c[0] for c in codes if c]
    assert len(set(flat)) == 3
    assert all(links.CODE_PATTERN.fullmatch(code) for code in flat)
    assert job.tracked_urls == ("https://shop.example/sale",)
    for i, row in enumerate(job.valid_rows()):
        assert rendered(job, row) == f"고객{i}님 {BASE}/r/{row.links[0] if row.links else ''}"


def test_codes_are_base62_of_fixed_length_and_do_not_repeat() -> None:
    # Given many freshly drawn codes
    codes = [links.new_code() for _ in range(20_000)]
    # Then each is 12 base62 characters, none repeats, and every character of the alphabet occurs
    assert all(links.CODE_PATTERN.fullmatch(c) for c in codes)
    assert len(set(codes)) == len(codes)
    assert set("".join(codes)) == set(links.ALPHABET)


def test_auto_moves_to_lms_when_the_short_link_makes_the_body_longer_than_an_sms() -> None:
    # Given a body that fits an SMS with its own short link but not with the (longer) short URL
    url = "https://a.kr/x"
    body = "가" * 30 + " " + url  # 60 + 1 + 14 = 75 bytes
    assert encoded_length(body) <= 90 < encoded_length("가" * 30 + " ") + SHORT

    # When it is prepared with and without tracking
    plain = prepare_job({**tracked_job(body), "track_links": False}, max_recipients=10)
    tracked = prepare_job(tracked_job(body), max_recipients=10, link_base_url=BASE)

    # Then the untracked message goes by SMS and the tracked one by LMS
    assert len(plain.sms) == 1 and not plain.lms
    assert len(tracked.lms) == 1 and not tracked.sms
    assert encoded_length(rendered(tracked, tracked.lms[0])) == 61 + SHORT


def test_sms_job_too_long_once_links_are_rewritten_is_refused_naming_the_body() -> None:
    # Given an SMS job whose body fits 90 bytes only with its original link
    body = "가" * 30 + " https://a.kr/x"

    # When it is prepared with tracked links
    with pytest.raises(ValidationError) as caught:
        prepare_job(tracked_job(body, channel="sms"), max_recipients=10, link_base_url=BASE)

    # Then the whole job is refused: its body is too long for an SMS
    assert caught.value.field == "body"
    assert caught.value.code == "content_too_long"


def test_personalised_body_too_long_with_its_links_fails_that_recipient_alone() -> None:
    # Given an SMS job where one recipient's name plus the short link exceeds 90 bytes
    body = "#{name} https://a.kr/x"
    recipients = [
        {"phone": "010-1234-0001", "variables": {"name": "짧은"}},
        {"phone": "010-1234-0002", "variables": {"name": "가" * 30}},
    ]

    # When it is prepared
    job = prepare_job(tracked_job(body, recipients, channel="sms"), max_recipients=10, link_base_url=BASE)

    # Then the short one goes by SMS and the long one fails as content_too_long, without codes
    assert [r.phone for r in job.sms] == ["01012340001"]
    assert [(r.phone, r.reason_code, r.links) for r in job.invalid] == [
        ("01012340002", "content_too_long", None)
    ]


@pytest.mark.parametrize(
    ("change", "base", "field"),
    [
        ({"body": "링크 없는 본문"}, BASE, "track_links"),
        ({}, None, "track_links"),
        ({"body": "#{__link1} https://a.kr"}, BASE, "body"),
        ({"track_links": "yes"}, BASE, "track_links"),
        ({"channel": "kakao", "template_code": "T1", "body": None}, BASE, "track_links"),
    ],
)
def test_bad_tracking_requests_name_the_field(change: dict[str, Any], base: str | None, field: str) -> None:
    # Given a tracking request that cannot work
    request = {**tracked_job("보세요 https://a.kr"), **change}
    # When it is prepared, Then it is refused naming the field at fault
    with pytest.raises(ValidationError) as caught:
        prepare_job(request, max_recipients=10, link_base_url=base)
    assert caught.value.field == field
