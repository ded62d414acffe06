"""Tracked links end to end: a job with ``track_links`` sends each recipient its own short link;
following it redirects and counts; the job and its recipients show the clicks."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.jobs import wait_finished
from tests.support.problems import problem
from tests.support.stack import SENDER, Stack

pytestmark = pytest.mark.integration

URL = "https://shop.example/sale?id=7"


def test_short_links_redirect_count_clicks_and_show_on_the_job(stack: Stack) -> None:
    # Given a delivered SMS job with a tracked link, to three recipients
    client = stack.new_tenant("links")
    phones = ["010-5100-0001", "010-5100-0002", "010-5100-0003"]
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "auto",
            "sender": SENDER,
            "body": f"#{{name}}님 세일 {URL} 확인",
            "track_links": True,
            "recipients": [{"phone": p, "variables": {"name": f"고객{i}"}} for i, p in enumerate(phones)],
        },
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    job = wait_finished(stack, client, job_id)
    assert job["counts"]["delivered"] == 3

    # Then each recipient was sent its own short link instead of the URL
    bodies = {
        e["recipient_no"]: e["body"]
        for e in stack.simulator.ledger()
        if e["reference"].startswith(f"{job_id}-")
    }
    pattern = re.compile(re.escape(stack.settings.api_url) + r"/r/([0-9A-Za-z]{12}) 확인$")
    codes = {}
    for phone, body in bodies.items():
        match = pattern.search(body)
        assert match is not None and URL not in body, body
        codes[phone] = match[1]
    assert len(set(codes.values())) == 3

    # When the first recipient follows its link twice and the second once
    public = httpx.Client(base_url=stack.settings.api_url, follow_redirects=False)
    first, second = codes["01051000001"], codes["01051000002"]
    answers = [public.get(f"/r/{code}") for code in (first, first, second)]

    # Then each answer redirects to the original URL, without being cached
    assert [(a.status_code, a.headers["location"]) for a in answers] == [(302, URL)] * 3
    assert answers[0].headers["cache-control"] == "no-store"
    # And the job counts 3 clicks by 2 of its 3 delivered recipients
    assert stack.job(client, job_id)["clicks"] == {"clicks": 3, "unique_clickers": 2, "click_rate": 0.6667}
    # And each recipient shows its first click time (none for the third)
    listed = client.get(f"/v1/jobs/{job_id}/recipients").json()["recipients"]
    clicked = {r["phone"][-4:]: r["first_clicked_at"] for r in listed}
    assert clicked["0001"] is not None and clicked["0002"] is not None and clicked["0003"] is None

    # And an unknown or malformed code is a 404 page, not a redirect
    for code in ("AAAAAAAAAAAA", "short", first[:-1] + "!"):
        missing = public.get(f"/r/{code}")
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    public.close()


def test_a_job_without_tracked_links_shows_no_clicks(stack: Stack) -> None:
    # Given a job sent without track_links
    client = stack.new_tenant("links-off")
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": f"세일 {URL}",
            "recipients": [{"phone": "010-5200-0001"}],
        },
    )
    # Then, once sent, its results have no clicks block, and its link went out as written
    job_id = response.json()["job_id"]
    job = wait_finished(stack, client, job_id)
    assert job["clicks"] is None
    [sent] = [e for e in stack.simulator.ledger() if e["reference"].startswith(f"{job_id}-")]
    assert sent["body"] == f"세일 {URL}"


def test_the_rewritten_body_length_decides_sms_or_lms(stack: Stack) -> None:
    # Given a 75-byte body that fits an SMS as written, but not once its link is a short link
    client = stack.new_tenant("links-length")
    body = "가" * 30 + " https://a.kr/x"
    short = len(f"{stack.settings.api_url}/r/") + 12
    assert 61 + 14 <= 90 < 61 + short

    # When it is sent with tracked links on channel auto, and on channel sms
    auto = client.post(
        "/v1/jobs",
        json={
            "channel": "auto",
            "sender": SENDER,
            "body": body,
            "track_links": True,
            "recipients": [{"phone": "010-5300-0001"}],
        },
    )
    sms = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": body,
            "track_links": True,
            "recipients": [{"phone": "010-5300-0002"}],
        },
    )

    # Then auto sends it as an LMS, with the short link in it, and sms is refused naming the body
    assert auto.status_code == 202, auto.text
    job_id = auto.json()["job_id"]
    job = wait_finished(stack, client, job_id)
    assert job["counts"]["by_channel"]["lms"] == 1 and job["counts"]["by_channel"]["sms"] == 0
    [sent] = [e for e in stack.simulator.ledger() if e["reference"].startswith(f"{job_id}-")]
    assert sent["channel"] == "lms" and f"{stack.settings.api_url}/r/" in sent["body"]
    assert sms.status_code == 422 and problem(sms)["field"] == "body"
