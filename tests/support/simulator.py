"""Start the NHN SMS simulator as a real process on a free port, for the length of a test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[2]
APP_KEY = "balsong-test"
SECRET_KEY = "balsong-test-secret"
#: The AlimTalk sender key the simulator accepts (its default).
KAKAO_SENDER_KEY = "balsong-sender-key"
#: Longest wait for the process to answer its health check, in seconds.
START_TIMEOUT_SECONDS = 15.0


#: Ports this process has handed out: the kernel may offer a port again as soon as the probing
#: socket is closed, and one stack asks for several at once (API, worker and scheduler metrics,
#: callbacks) before any binds. Seen: a stack's API port given to its workers' Dramatiq metrics
#: server too, which then answered the API's health check and 501 to every POST.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, never one this process was given before."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class SimulatorHandle:
    """A running simulator: its URL, credentials and test routes."""

    def __init__(self, url: str, app_key: str, secret_key: str, knobs: dict[str, Any] | None = None) -> None:
        self.url = url
        #: Knobs applied at start and again after every reset.
        self.knobs = dict(knobs or {})
        self.app_key = app_key
        self.secret_key = secret_key
        #: Process id of the simulator (set by :func:`running_simulator`).
        self.pid: int | None = None
        #: The AlimTalk ``senderKey`` the simulator accepts.
        self.kakao_sender_key = KAKAO_SENDER_KEY
        self._client = httpx.Client(base_url=url, timeout=10.0)

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change behaviour knobs (partial update); the knobs now in force."""
        response = self._client.post("/_simulator/config", content=orjson.dumps(knobs))
        response.raise_for_status()
        return dict(response.json())

    def ledger(self) -> list[dict[str, Any]]:
        """Every accepted recipient, in acceptance order."""
        response = self._client.get("/_simulator/ledger")
        response.raise_for_status()
        return [orjson.loads(line) for line in response.content.splitlines() if line]

    def arrivals(self) -> list[tuple[float, int]]:
        """(arrival time, recipients) of every accepted request, in arrival order."""
        response = self._client.get("/_simulator/ledger/arrivals")
        response.raise_for_status()
        return [(float(at), int(n)) for at, n in response.json()]

    def summary(self) -> dict[str, Any]:
        response = self._client.get("/_simulator/ledger/summary")
        response.raise_for_status()
        return dict(response.json())

    def add_kakao_template(self, code: str, content: str, *, name: str = "", status: str = "TSC03") -> None:
        """Register (or replace) an AlimTalk template; ``status`` ``TSC03`` is approved."""
        body = {
            "templateCode": code,
            "templateName": name or code,
            "templateContent": content,
            "status": status,
        }
        self._client.post("/_simulator/kakao/templates", content=orjson.dumps(body)).raise_for_status()

    def inject_results(self, kind: str, rows: list[Any]) -> None:
        """Have the next report poll of ``kind`` (``sms`` or ``mms``) return ``rows`` verbatim."""
        self._client.post(f"/_simulator/results/{kind}", content=orjson.dumps(rows)).raise_for_status()

    def reset(self) -> None:
        """Forget every message and template (AlimTalk keeps its built-in templates); restore the
        knobs given at start."""
        self._client.post("/_simulator/reset").raise_for_status()
        if self.knobs:
            self.configure(**self.knobs)

    def close(self) -> None:
        self._client.close()


@contextmanager
def running_simulator(
    app_key: str = APP_KEY, secret_key: str = SECRET_KEY, **knobs: Any
) -> Iterator[SimulatorHandle]:
    """Run ``python -m carriers.simulator`` until the block ends; ``knobs`` are applied at start."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "carriers.simulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--app-key",
        app_key,
        "--secret-key",
        secret_key,
    ]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        handle = SimulatorHandle(f"http://127.0.0.1:{port}", app_key, secret_key, knobs)
        handle.pid = process.pid
        try:
            _wait_healthy(handle, process, log)
            if knobs:
                handle.configure(**knobs)
            yield handle
        finally:
            handle.close()
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(handle: SimulatorHandle, process: subprocess.Popen[bytes], log: Any) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with httpx.Client(base_url=handle.url, timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                if client.get("/_simulator/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    log.seek(0)
    output = log.read().decode(errors="replace")
    raise RuntimeError(f"simulator did not become healthy (exit code {process.poll()}):\n{output}")
