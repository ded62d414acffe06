"""A 100,000-row CSV through the console's send steps, over HTTP against the running stack.

Given a signed-in operator, when they upload a 100,000-row CSV, keep the guessed columns, check
and confirm, then the check counts every row, the job is made once with all of them (origin
``console``) and every recipient reaches the carrier. (That the upload is read row by row, never
whole, is `tests/unit/test_recipient_files.py`'s.)
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.security.support import CSRF_TOKEN, key_of, signed_in
from tests.support.jobs import wait_finished
from tests.support.stack import SENDER, Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = 100_000


def test_a_100000_row_csv_upload_is_checked_and_sent(stack: Stack) -> None:
    # Given a 100,000-row CSV with a header and a name per row
    lines = ["휴대폰,이름"] + [f"010-{9000 + i // 10000:04d}-{i % 10000:04d},고객{i}" for i in range(ROWS)]
    csv = ("\n".join(lines) + "\n").encode()
    client = stack.new_tenant("send-bulk")

    with signed_in(stack, key_of(client)) as console:
        form = console.get("/console/send")
        assert form.status_code == 200
        found = CSRF_TOKEN.search(form.text)
        assert found
        token = found[1]

        # When it is uploaded with a message
        staged = console.post(
            "/console/send",
            data={"csrf_token": token, "mode": "text", "sender": SENDER, "body": "#{name}님 안내"},
            files={"recipients_file": ("bulk.csv", csv, "text/csv")},
        )
        assert staged.status_code == 303, staged.text[:500]
        draft = staged.headers["location"]
        columns = console.get(draft)
        assert columns.status_code == 200 and "100,001행" in columns.text

        # And the guessed columns are kept (header, phone, name)
        mapping = {"csrf_token": token, "header": "1", "role0": "phone", "role1": "variable", "name1": "name"}
        checked = console.post(f"{draft}/check", data=mapping)
        assert checked.status_code == 303
        check = console.get(f"{draft}/check")

        # Then every row is counted valid, at 9 points each
        assert check.status_code == 200, check.text[:500]
        assert re.search(r'data-count="valid">100,000<', check.text)
        assert "900,000.00 P" in check.text

        # When confirmed, Then one job of 100,000 recipients is made, and all reach the carrier
        confirmed = console.post(f"{draft}/confirm", data={"csrf_token": token})
        assert confirmed.status_code == 303
        job_id = int(confirmed.headers["location"].split("/")[-1].split("?")[0])
    job = wait_finished(stack, client, job_id, timeout=600)
    assert job["counts"]["total"] == ROWS and job["counts"]["delivered"] == ROWS


def test_two_confirms_at_once_make_one_job(stack: Stack) -> None:
    # Given a checked draft of 20,000 recipients (long enough to store that two requests overlap)
    rows = 20_000
    csv = "".join(f"010-{8800 + i // 10000:04d}-{i % 10000:04d}\n" for i in range(rows)).encode()
    client = stack.new_tenant("send-race")
    with signed_in(stack, key_of(client)) as console:
        found = CSRF_TOKEN.search(console.get("/console/send").text)
        assert found
        token = found[1]
        staged = console.post(
            "/console/send",
            data={"csrf_token": token, "mode": "text", "sender": SENDER, "body": "동시 확인"},
            files={"recipients_file": ("race.csv", csv, "text/csv")},
        )
        draft = staged.headers["location"]
        assert console.post(f"{draft}/check", data={"csrf_token": token, "role0": "phone"}).status_code == 303

        # When its confirm is posted twice at the same moment (a double click past the disabled button)
        barrier = threading.Barrier(2)

        def confirm() -> httpx.Response:
            barrier.wait()
            return console.post(f"{draft}/confirm", data={"csrf_token": token})

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: confirm(), range(2)))

    # Then both lead to one job, the only one the tenant has, charged once
    assert [a.status_code for a in answers] == [303, 303], [a.text[:300] for a in answers]
    locations = {a.headers["location"].split("?")[0] for a in answers}
    assert len(locations) == 1
    jobs = client.get("/v1/jobs").json()["jobs"]
    assert len(jobs) == 1 and jobs[0]["counts"]["total"] == rows
    charges = [row for row in client.get("/v1/ledger").json()["entries"] if row["kind"] == "charge"]
    assert len(charges) == 1
