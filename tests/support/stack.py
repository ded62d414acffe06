"""The whole of balsong running as real processes (API, worker, scheduler, simulator)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg

from cli.processes import ProcessGroup, api_argv, callbacks_argv, scheduler_argv, wait_healthy, worker_argv
from engine.accounts.billing import top_up
from engine.accounts.tenants import add_sender, create_api_key, create_tenant
from engine.config import Settings
from tests.support.services import settings_env
from tests.support.simulator import SimulatorHandle, free_port, running_simulator

SENDER = "02-1234-5678"
#: Points a test tenant starts with: enough for any test's jobs.
TEST_BALANCE = Decimal(1_000_000_000)


def submit_sms(client: httpx.Client, body: str, phones: list[str], **fields: Any) -> int:
    """Submit an SMS job from the test sender, with any further ``fields`` of the request
    (``callback_url``...); its id (the API must accept it)."""
    response = client.post(
        "/v1/jobs",
        json={
            "channel": "sms",
            "sender": SENDER,
            "body": body,
            "recipients": [{"phone": p} for p in phones],
            **fields,
        },
    )
    assert response.status_code == 202, response.text
    return int(response.json()["job_id"])


@dataclass
class Stack:
    settings: Settings
    simulator: SimulatorHandle
    processes: ProcessGroup
    clients: list[httpx.Client] = field(default_factory=list)

    def new_tenant(
        self, name: str, scopes: tuple[str, ...] = ("send", "read"), balance: Decimal = TEST_BALANCE
    ) -> httpx.Client:
        """A tenant with a registered sender and ``balance`` points, and an API client
        authenticated as it."""
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn, conn.transaction():
            tenant_id = create_tenant(conn, name)
            add_sender(conn, tenant_id, SENDER)
            if balance:
                top_up(conn, tenant_id, balance, memo="test tenant")
            key = create_api_key(conn, tenant_id, scopes)
        client = httpx.Client(
            base_url=self.settings.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def submissions(self, job_id: int) -> dict[str, int]:
        """How often the carrier was handed each of the job's references (the simulator ledger)."""
        return {
            e["reference"]: e["submissions"]
            for e in self.simulator.ledger()
            if e["reference"].startswith(f"{job_id}-")
        }

    def job(self, client: httpx.Client, job_id: int) -> dict[str, Any]:
        response = client.get(f"/v1/jobs/{job_id}")
        response.raise_for_status()
        return dict(response.json())


@contextmanager
def running_stack(
    settings: Settings,
    log_dir: Path,
    *,
    worker_processes: int = 2,
    worker_threads: int = 4,
    **simulator_knobs: Any,
) -> Iterator[Stack]:
    with running_simulator(**simulator_knobs) as simulator:
        settings = replace(
            settings,
            sms_api_url=simulator.url,
            sms_app_key=simulator.app_key,
            sms_secret_key=simulator.secret_key,
            kakao_api_url=simulator.url,
            kakao_app_key=simulator.app_key,
            kakao_secret_key=simulator.secret_key,
            kakao_sender_key=simulator.kakao_sender_key,
            api_url=f"http://127.0.0.1:{free_port()}",
            # Each run its own sample files and free ports, so parallel runs never mix metrics.
            metrics_dir=str(log_dir / "metrics"),
            metrics_host="127.0.0.1",
            worker_metrics_port=free_port(),
            scheduler_metrics_port=free_port(),
            callbacks_metrics_port=free_port(),
            # Callback receivers in tests listen on this machine.
            callback_allow_http=True,
            # A receiver that comes back is tried again within seconds, not minutes.
            callback_max_backoff_seconds=2.0,
        )
        env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
        group = ProcessGroup(log_dir=log_dir, env=env)
        try:
            port = int(settings.api_url.rsplit(":", 1)[1])
            group.start("api", api_argv("127.0.0.1", port))
            group.start("worker", worker_argv(worker_processes, worker_threads))
            group.start("scheduler", scheduler_argv())
            group.start("callbacks", callbacks_argv())
            wait_healthy(f"{settings.api_url}/healthz", group)
            stack = Stack(settings, simulator, group)
            try:
                yield stack
            finally:
                stack.close()
        finally:
            group.stop_all()
