"""The ``balsong`` command: every argument explained, expected errors as one line and an exit
status by class (run as a real subprocess), progress without a terminal, the stack's port checks."""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli import stack
from cli.exits import JOB_STATUS_EXITS, CommandError, Exit
from cli.main import build_parser, failure
from cli.processes import ProcessGroup, dramatiq_args
from cli.progress import ProgressLine, elapsed_seconds, render_bar
from engine.errors import JobNotPaused, JobStateConflict, NotFound, ValidationError
from engine.lifecycle.statuses import FINISHED_JOB_STATUSES, JobStatus

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def balsong(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m cli.main ARGS`` as an operator runs it, with ``env`` over this environment."""
    environ = {**os.environ, "BALSONG_ENV": "development", "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], code: Exit, *words: str) -> None:
    """The command failed with ``code`` and one line on stderr (no traceback) naming ``words``."""
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


# -- the parser ----------------------------------------------------------------------------------


def _parsers(
    parser: argparse.ArgumentParser, path: str = "balsong"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_argument_of_every_command_says_what_it_is() -> None:
    # Given every (sub-)command's parser
    parsers = list(_parsers(build_parser()))
    assert len(parsers) > 40
    missing = []
    for path, parser in parsers:
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            # Then each argument has help text
            if not (action.help or "").strip():
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_the_help_epilog_lists_every_exit_status() -> None:
    # Given `balsong --help`; Then it lists every exit status with its meaning
    text = build_parser().format_help()
    for code in Exit:
        assert f"  {int(code):>3}  " in text


def test_the_simulator_takes_its_keys_without_a_double_dash() -> None:
    # When `balsong simulator --app-key … --secret-key …` is parsed
    args = build_parser().parse_args(["simulator", "--port", "8071", "--app-key", "ak", "--secret-key", "sk"])
    # Then they are the simulator's options
    assert (args.port, args.app_key, args.secret_key) == (8071, "ak", "sk")


def test_the_worker_passes_its_queues_and_watch_directory_to_dramatiq() -> None:
    # Given a worker for the transactional lane only, reloading on changes
    args = build_parser().parse_args(["worker", "--queues", "send.sms.tx", "send.lms.tx", "--watch", "."])
    # Then Dramatiq is told exactly that
    argv = dramatiq_args(2, 4, queues=args.queues, watch=args.watch)
    assert argv[argv.index("--queues") + 1 : argv.index("--watch")] == ["send.sms.tx", "send.lms.tx"]
    assert argv[argv.index("--watch") + 1] == "."
    # And without them, every queue and no watching
    assert "--queues" not in dramatiq_args(2, 4) and "--watch" not in dramatiq_args(2, 4)


def test_a_worker_for_an_unknown_queue_is_a_usage_error() -> None:
    done = balsong("worker", "--queues", "send.fax")
    assert_one_line(done, Exit.USAGE, "send.fax", "send.sms.tx")


def test_a_worker_watching_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    done = balsong("worker", "--watch", str(tmp_path / "nowhere"))
    assert_one_line(done, Exit.USAGE, "--watch", "no such directory")


def test_version_is_the_package_version() -> None:
    from importlib.metadata import version

    done = balsong("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"balsong {version('balsong')}"


# -- expected errors: one line, an exit status by class --------------------------------------------


def test_a_bad_argument_is_a_usage_error() -> None:
    done = balsong("status", "not-a-number")
    assert done.returncode == Exit.USAGE
    assert "Traceback" not in done.stderr and "invalid int value" in done.stderr


def test_status_without_a_key_says_how_to_give_one() -> None:
    environ = {k: v for k, v in os.environ.items() if k != "BALSONG_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "status", "1"],
        env={**environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert_one_line(done, Exit.USAGE, "--api-key", "BALSONG_API_KEY")


def test_an_api_that_does_not_answer_is_service_unavailable() -> None:
    port = _closed_port()
    done = balsong("status", "1", "--api-key", "bsk_x", BALSONG_API_URL=f"http://127.0.0.1:{port}")
    assert_one_line(done, Exit.UNAVAILABLE, f"127.0.0.1:{port}", "BALSONG_API_URL")


def test_a_postgresql_that_does_not_answer_is_service_unavailable() -> None:
    port = _closed_port()
    done = balsong(
        "tenant", "balance", "acme", BALSONG_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/x"
    )
    assert_one_line(done, Exit.UNAVAILABLE, "PostgreSQL", f"127.0.0.1:{port}", "BALSONG_DATABASE_URL")


def test_a_rabbitmq_that_does_not_answer_is_service_unavailable() -> None:
    port = _closed_port()
    done = balsong("dead-letters", BALSONG_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{port}/%2F")
    assert_one_line(done, Exit.UNAVAILABLE, "RabbitMQ", f"127.0.0.1:{port}", "BALSONG_BROKER_URL")


def test_a_redis_that_does_not_answer_is_service_unavailable() -> None:
    import redis

    # Given the error a command gets from a Redis that is down (every command that uses Redis
    # reaches PostgreSQL first, so it is mapped in-process here)
    port = _closed_port()
    exc = redis.exceptions.ConnectionError(f"Error 111 connecting to 127.0.0.1:{port}. Connection refused.")
    # Then it is service unavailable, naming Redis and the setting
    mapped = failure(exc)
    assert mapped is not None
    assert mapped[0] == Exit.UNAVAILABLE
    assert "Redis" in mapped[1] and "BALSONG_REDIS_URL" in mapped[1]


def _api_error(status: int, detail: str) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://127.0.0.1:8000/v1/jobs/7")
    response = httpx.Response(status, json={"detail": detail}, request=request)
    return httpx.HTTPStatusError(detail, request=request, response=response)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CommandError("no job 7", Exit.NOT_FOUND), Exit.NOT_FOUND),
        (NotFound("no tenant named 'x'"), Exit.NOT_FOUND),
        (ValidationError("sender", "not a number"), Exit.USAGE),
        (JobNotPaused(), Exit.REFUSED),
        (JobStateConflict("job_finished", "the job has finished"), Exit.REFUSED),
        (_api_error(401, "bad key"), Exit.REFUSED),
        (_api_error(403, "needs export:unmasked"), Exit.REFUSED),
        (_api_error(404, "job 7 not found"), Exit.NOT_FOUND),
        (_api_error(409, "finished"), Exit.REFUSED),
        (_api_error(422, "format: must be csv or xlsx"), Exit.USAGE),
        (_api_error(503, "unavailable"), Exit.UNAVAILABLE),
        (FileNotFoundError(2, "No such file or directory", "/nowhere/list.csv"), Exit.USAGE),
    ],
)
def test_each_expected_error_maps_to_its_class(error: Exception, code: Exit) -> None:
    # When a command raises an expected error; Then it has its exit status and a one-line message
    mapped = failure(error)
    assert mapped is not None
    assert mapped[0] == code
    assert mapped[1] and "\n" not in mapped[1]


def test_a_bug_is_not_mapped() -> None:
    # Given an unexpected error (a bug); Then it is not disguised: its traceback is kept
    assert failure(KeyError("counts")) is None


def test_every_status_a_job_stops_in_has_an_exit_status() -> None:
    # Given every finished job status, and paused; Then each has its own exit status, 0 only for completed
    stopping = {*FINISHED_JOB_STATUSES, JobStatus.PAUSED}
    assert set(JOB_STATUS_EXITS) == stopping
    assert [s for s, code in JOB_STATUS_EXITS.items() if code == Exit.OK] == [JobStatus.COMPLETED]
    assert len(set(JOB_STATUS_EXITS.values())) == len(stopping)


# -- progress ------------------------------------------------------------------------------------


def _job(status: str = "sending", **counts: int) -> dict[str, Any]:
    base = dict(
        total=100_000, queued=0, sent=0, delivered=0, failed=0, expired=0, cancelled=0, unknown=0, in_flight=0
    )
    base.update(counts)
    created = datetime.now(UTC) - timedelta(seconds=42)
    return {
        "id": 7,
        "status": status,
        "counts": base,
        "created_at": created.isoformat(),
        "completed_at": None,
    }


def test_the_bar_shows_submitted_and_finished_apart_and_says_it_waits_for_reports() -> None:
    # Given a job whose every recipient is with a carrier, 152 reported
    job = _job(sent=100_000, delivered=152, in_flight=99_848)
    # When its bar is drawn
    line = render_bar(job, 12.0)
    # Then it says all are submitted, few finished, and that it waits for delivery reports
    assert "submitted 100.0%" in line
    assert "finished   0.2%" in line
    assert "waiting for delivery reports (99,848 in flight)" in line


def test_a_paused_job_says_how_to_resume() -> None:
    assert "balsong resume 7" in render_bar(_job("paused", queued=50_000), 3.0)


def test_elapsed_is_counted_from_the_jobs_creation() -> None:
    job = _job()
    assert 41 <= elapsed_seconds(job) < 60
    job["completed_at"] = (datetime.fromisoformat(job["created_at"]) + timedelta(seconds=90)).isoformat()
    assert elapsed_seconds(job) == 90.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_without_a_terminal_progress_is_plain_lines_now_and_then() -> None:
    # Given progress written to a pipe (no terminal), redrawn every half second for 12 s
    out = io.StringIO()
    clock = FakeClock()
    progress = ProgressLine(out, tty=False, interval=5.0, clock=clock)
    for step in range(24):
        clock.now = step * 0.5
        progress.show(f"line {step}", "sending")
    # And the status changes once, and the last line is forced
    clock.now = 12.1
    progress.show("paused now", "paused")
    progress.show("the end", "paused", force=True)
    progress.close()
    # Then there is no carriage return, one line per 5 s, plus the change and the end
    text = out.getvalue()
    assert "\r" not in text
    assert text.splitlines() == ["line 0", "line 10", "line 20", "paused now", "the end"]


def test_on_a_terminal_progress_is_redrawn_in_place() -> None:
    out = io.StringIO()
    progress = ProgressLine(out, tty=True)
    progress.show("one")
    progress.show("two")
    progress.close()
    assert out.getvalue() == "\rone\x1b[K\rtwo\x1b[K\n"


# -- the stack's ports -----------------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def test_the_demo_refuses_a_taken_api_port(taken_port: int) -> None:
    # Given another server on the API's port
    # When the demo starts
    done = balsong(
        "demo",
        "--recipients",
        "10",
        BALSONG_API_URL=f"http://127.0.0.1:{taken_port}",
        BALSONG_SMS_API_URL=f"http://127.0.0.1:{_closed_port()}",
    )
    # Then it fails at once, in one line naming the port and how to choose another
    assert_one_line(done, Exit.REFUSED, f"port {taken_port}", "BALSONG_API_URL")
    assert "migrations" not in done.stdout


def test_the_stack_refuses_a_taken_simulator_port(taken_port: int) -> None:
    done = balsong(
        "run",
        BALSONG_API_URL=f"http://127.0.0.1:{_closed_port()}",
        BALSONG_SMS_API_URL=f"http://127.0.0.1:{taken_port}",
    )
    assert_one_line(done, Exit.REFUSED, "simulator", f"port {taken_port}", "BALSONG_SMS_API_URL")


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_health_answer_from_another_process_is_refused(tmp_path: Path) -> None:
    # Given a health endpoint answered by this process, not by the child started as "api"
    server = HTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    group = ProcessGroup(log_dir=tmp_path)
    group.start("api", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # When the stack waits for its API to be healthy
        with pytest.raises(CommandError) as refused:
            stack.wait_own_health(f"http://127.0.0.1:{server.server_port}/healthz", group, "api", timeout=10)
        # Then it is refused: another process holds the port
        assert refused.value.code == Exit.REFUSED
        assert "another process" in str(refused.value)
    finally:
        group.stop_all()
        server.shutdown()
        server.server_close()


def test_a_health_answer_from_its_own_child_is_accepted(tmp_path: Path) -> None:
    # Given a child that serves its own health (its pid in the answer)
    port = _closed_port()
    code = (
        "import json, os\n"
        "from http.server import BaseHTTPRequestHandler, HTTPServer\n"
        "class H(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body = json.dumps({'pid': os.getpid()}).encode()\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n"
        f"HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    group = ProcessGroup(log_dir=tmp_path)
    group.start("api", [sys.executable, "-c", code])
    try:
        # When the stack waits for it; Then it is accepted
        stack.wait_own_health(f"http://127.0.0.1:{port}/healthz", group, "api", timeout=30)
    finally:
        group.stop_all()
