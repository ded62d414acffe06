"""The ``balsong`` command against the running stack: `init` makes a key that sends, `status`
exits by the job's status (at once when paused), `--json` is the job view, `cancel` and `export`
work on a real job, and ``GET /`` leads to the console."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from cli.exits import Exit
from tests.support.jobs import wait_finished
from tests.support.services import settings_env
from tests.support.stack import SENDER, Stack, submit_sms

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def balsong(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """``balsong ARGS`` as an operator runs it against the stack (output not a terminal)."""
    env = {**os.environ, **settings_env(stack.settings), "PYTHONPATH": str(ROOT)}
    env.pop("BALSONG_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )


def key_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


def reservation(client: httpx.Client, phones: list[str]) -> int:
    """A job reserved two days ahead (it stays ``scheduled``)."""
    when = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    return submit_sms(client, "예약 발송", phones, scheduled_at=when)


def test_init_makes_a_tenant_whose_key_sends_at_once(stack: Stack) -> None:
    # Given `balsong init` for a new tenant, its sender and points
    done = balsong(stack, "init", "init-acme", "--sender", SENDER, "--top-up", "1000")
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert "shown once" in done.stderr and "curl" in done.stderr
    # When its key submits a job from that sender
    with httpx.Client(base_url=stack.settings.api_url, headers={"Authorization": f"Bearer {key}"}) as client:
        job_id = submit_sms(client, "init 첫 발송", ["010-5100-0001", "010-5100-0002"])
        wait_finished(stack, client, job_id)
        # Then it is accepted, sent and charged to the tenant's balance
        assert stack.job(client, job_id)["status"] == "completed"
        balance = client.get("/v1/balance").json()
    assert float(balance["balance"]) < 1000
    # And the same name again is refused in one line
    again = balsong(stack, "init", "init-acme", "--sender", SENDER)
    assert again.returncode == Exit.REFUSED and "Traceback" not in again.stderr
    assert again.stderr.strip().splitlines() == [
        "balsong: a tenant named 'init-acme' already exists: choose another name"
    ]
    # And a number that cannot send is a usage error, creating nothing
    bad = balsong(stack, "init", "init-bad-sender", "--sender", "123")
    assert bad.returncode == Exit.USAGE and "sender number '123'" in bad.stderr
    assert balsong(stack, "tenant", "balance", "init-bad-sender").returncode == Exit.NOT_FOUND


def test_status_exits_zero_for_a_completed_job_with_its_real_elapsed_time(stack: Stack) -> None:
    # Given a job that completes
    client = stack.new_tenant("status-completed")
    job_id = submit_sms(client, "완료될 발송", ["010-5200-0001", "010-5200-0002", "010-5200-0003"])
    # When `balsong status JOB` follows it (output piped: plain lines, no carriage returns)
    done = balsong(stack, "status", str(job_id), "--api-key", key_of(client))
    # Then it exits 0 and its summary says completed, with the time since the job was made
    assert done.returncode == Exit.OK, done.stderr
    assert "\r" not in done.stdout
    assert f"Job {job_id}: completed" in done.stdout
    assert "(0.0s)" not in done.stdout
    assert "submitted 100.0%" in done.stdout


@pytest.mark.parametrize(
    ("phones", "status", "code"),
    [
        (["010-12", "010-34"], "failed", Exit.JOB_FAILED),
        (["010-5300-0001", "010-12"], "partially_failed", Exit.JOB_PARTIALLY_FAILED),
    ],
)
def test_status_exits_non_zero_for_a_job_that_did_not_complete(
    stack: Stack, phones: list[str], status: str, code: Exit
) -> None:
    # Given a job some or all of whose recipients fail
    client = stack.new_tenant(f"status-{status}")
    job_id = submit_sms(client, "실패가 섞인 발송", phones)
    # When `balsong status JOB` follows it
    done = balsong(stack, "status", str(job_id), "--api-key", key_of(client))
    # Then it exits with that status's code, saying how it ended
    assert done.returncode == code, (done.stdout, done.stderr)
    assert f"ended {status}" in done.stderr


def test_cancel_then_status_exits_cancelled(stack: Stack) -> None:
    # Given a reservation
    client = stack.new_tenant("status-cancelled")
    job_id = reservation(client, ["010-5400-0001"])
    # When an operator cancels it, and asks its status
    cancelled = balsong(stack, "cancel", str(job_id))
    status = balsong(stack, "status", str(job_id), "--api-key", key_of(client))
    # Then it is cancelled, and status exits with the cancelled code
    assert cancelled.returncode == Exit.OK, cancelled.stderr
    assert f"job {job_id} cancelled" in cancelled.stdout
    assert status.returncode == Exit.JOB_CANCELLED
    # And cancelling a finished job is refused in one line
    finished = submit_sms(client, "끝난 발송", ["010-5400-0002"])
    wait_finished(stack, client, finished)
    refused = balsong(stack, "cancel", str(finished))
    assert refused.returncode == Exit.REFUSED and "Traceback" not in refused.stderr


@pytest.mark.parametrize(("status", "code"), [("missed", Exit.JOB_MISSED), ("paused", Exit.JOB_PAUSED)])
def test_status_of_a_missed_or_paused_job_returns_at_once(stack: Stack, status: str, code: Exit) -> None:
    # Given a job that ended missed, or stands paused (put there directly: how a job gets there is
    # the reservation pump's and the failure ratio's business, tested with them)
    client = stack.new_tenant(f"status-{status}")
    job_id = reservation(client, ["010-5500-0001"])
    with psycopg.connect(stack.settings.database_url, autocommit=True) as conn:
        if status == "missed":
            conn.execute("UPDATE jobs SET status = 'missed', completed_at = now() WHERE id = %s", (job_id,))
        else:
            conn.execute(
                "UPDATE jobs SET status = 'paused', paused_at = now(), paused_reason = 'failure ratio'"
                " WHERE id = %s",
                (job_id,),
            )
    # When `balsong status JOB` is asked (with a day to wait)
    done = balsong(stack, "status", str(job_id), "--api-key", key_of(client))
    # Then it answers at once with the status's code; a paused job says how to resume it
    assert done.returncode == code, done.stderr
    if status == "paused":
        assert f"balsong resume {job_id}" in done.stderr


def test_status_json_is_the_job_view(stack: Stack) -> None:
    # Given a reservation (not finished)
    client = stack.new_tenant("status-json")
    job_id = reservation(client, ["010-5600-0001", "010-5600-0002"])
    # When its status is asked as JSON, without waiting
    done = balsong(stack, "status", str(job_id), "--api-key", key_of(client), "--json", "--no-wait")
    # Then stdout is the API's job view, and the exit says it has not finished
    assert done.returncode == Exit.JOB_NOT_FINISHED
    view = json.loads(done.stdout)
    assert view["id"] == job_id and view["status"] == "scheduled" and view["counts"]["total"] == 2


def test_status_of_an_unknown_job_or_with_a_bad_key(stack: Stack) -> None:
    client = stack.new_tenant("status-errors")
    missing = balsong(stack, "status", "987654321", "--api-key", key_of(client))
    assert missing.returncode == Exit.NOT_FOUND and "Traceback" not in missing.stderr
    bad_key = balsong(stack, "status", "1", "--api-key", "bsk_not-a-key")
    assert bad_key.returncode == Exit.REFUSED and "API key" in bad_key.stderr


def test_export_writes_every_recipient_with_a_progress_line(stack: Stack, tmp_path: Path) -> None:
    # Given a finished job of three recipients
    client = stack.new_tenant("export-cli")
    job_id = submit_sms(client, "내보내기", ["010-5700-0001", "010-5700-0002", "010-12"])
    wait_finished(stack, client, job_id)
    # When an operator exports it as CSV, and as XLSX (from the file's extension)
    target = tmp_path / "job.csv"
    done = balsong(stack, "export", str(job_id), "-o", str(target))
    xlsx = balsong(stack, "export", str(job_id), "-o", str(tmp_path / "job.xlsx"))
    # Then the CSV holds its three rows, masked, and the progress went to stderr as plain lines
    assert done.returncode == Exit.OK, done.stderr
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 1 + 3
    assert all("****" in row[3] for row in rows[1:])
    assert "3 of 3 rows" in done.stderr and "\r" not in done.stderr
    # And the workbook was written whole, under its name only once complete
    assert xlsx.returncode == Exit.OK, xlsx.stderr
    assert (tmp_path / "job.xlsx").read_bytes()[:2] == b"PK"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.csv", "job.xlsx"]


def test_the_root_leads_to_the_console(stack: Stack) -> None:
    # When `/` is asked for; Then it redirects to the console
    response = httpx.get(f"{stack.settings.api_url}/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/console"


def test_send_a_csv_file_with_a_header_and_variables(stack: Stack, tmp_path: Path) -> None:
    # Given a CSV of recipients with a header row naming the phone, a variable and a reference,
    # one bad number among them
    client = stack.new_tenant("cli-send")
    path = tmp_path / "recipients.csv"
    path.write_text(
        "전화번호,name,주문번호\n010-5300-0001,홍길동,ORDER-1\n010-5300-0002,김철수,ORDER-2\n010-53,이영희,ORDER-3\n",
        encoding="utf-8",
    )
    # When it is sent from the command line
    done = balsong(
        stack,
        "send",
        str(path),
        "--sender",
        SENDER,
        "--body",
        "#{name}님, 주문이 발송되었습니다",
        "--reference",
        "cli-campaign",
        "--api-key",
        key_of(client),
    )
    # Then the job is accepted and followed to its end: the bad number failed alone
    job_id = int(done.stdout.strip())
    assert done.returncode == Exit.JOB_PARTIALLY_FAILED, done.stderr
    assert "3 recipients from recipients.csv" in done.stderr
    job = stack.job(client, job_id)
    assert job["reference"] == "cli-campaign"
    assert job["counts"]["delivered"] == 2 and job["counts"]["failed"] == 1
    # And each recipient kept its reference, and got its own name
    recipients = client.get(f"/v1/jobs/{job_id}/recipients", params={"reference": "ORDER-2"}).json()[
        "recipients"
    ]
    assert len(recipients) == 1
    bodies = {
        e["reference"]: e["body"] for e in stack.simulator.ledger() if e["reference"].startswith(f"{job_id}-")
    }
    assert bodies[f"{job_id}-{recipients[0]['seq']}"] == "김철수님, 주문이 발송되었습니다"


def test_send_refuses_what_the_api_refuses_in_one_line(stack: Stack, tmp_path: Path) -> None:
    client = stack.new_tenant("cli-send-bad")
    path = tmp_path / "recipients.csv"
    path.write_text("010-5301-0001\n", encoding="utf-8")
    # A sender the tenant has not registered is the API's refusal, told in one line
    done = balsong(
        stack,
        "send",
        str(path),
        "--no-header",
        "--sender",
        "02-9999-0000",
        "--body",
        "안내",
        "--api-key",
        key_of(client),
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "sender" in done.stderr
    # A file of another kind is a usage error before anything is sent
    other = tmp_path / "recipients.pdf"
    other.write_bytes(b"%PDF")
    done = balsong(stack, "send", str(other), "--sender", SENDER, "--body", "x", "--api-key", key_of(client))
    assert done.returncode == Exit.USAGE and ".xlsx and .csv" in done.stderr
