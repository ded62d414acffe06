"""balsong on several hosts: the API on one, the worker and scheduler on another.

Each "host" is a network namespace the test makes (``ip netns``) with a veth link to the test's
namespace; PostgreSQL, Redis, RabbitMQ and the carrier simulator are reached at the link's far
address, never at localhost. Skipped, saying why, where namespaces cannot be made (no root or no
iproute2); CI runs it as root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cli.processes import ProcessGroup, api_argv, scheduler_argv, wait_healthy, worker_argv
from engine.config import Settings
from engine.db import upgrade
from tests.conftest import TEST_OVERRIDES
from tests.support.jobs import wait_finished
from tests.support.netns import Host, NamespacesUnavailable, Relay, network_hosts
from tests.support.services import isolated_settings, settings_env
from tests.support.simulator import SimulatorHandle, free_port, running_simulator
from tests.support.stack import Stack, submit_sms

pytestmark = pytest.mark.integration

SERVICE_URLS = ("database_url", "redis_url", "broker_url", "sms_api_url", "kakao_api_url")


def port_of(url: str) -> int:
    parts = urlsplit(url)
    assert parts.port is not None, url
    return parts.port


def seen_from(settings: Settings, host: Host) -> Settings:
    """``settings`` for a process on ``host``: every service at the host's gateway address."""
    moved = {name: getattr(settings, name).replace("127.0.0.1", host.gateway) for name in SERVICE_URLS}
    return replace(settings, **moved)


@dataclass
class Deployment:
    stack: Stack
    relay: Relay
    api_host: Host
    worker_host: Host


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    log_dir: Path = tmp_path_factory.mktemp("many-hosts-logs")
    with ExitStack() as cleanup:
        try:
            api_host, worker_host = cleanup.enter_context(network_hosts(2))
        except NamespacesUnavailable as exc:
            pytest.skip(f"network namespaces cannot be made here ({exc}); run as root with iproute2")
        isolated = cleanup.enter_context(isolated_settings(**TEST_OVERRIDES))
        simulator = cleanup.enter_context(running_simulator())
        upgrade(isolated.database_url)
        settings = with_simulator(isolated, simulator)
        settings = replace(settings, api_url=f"http://{api_host.address}:{free_port()}")
        ports = sorted({port_of(getattr(settings, name)) for name in SERVICE_URLS})
        relay = cleanup.enter_context(Relay([api_host.gateway, worker_host.gateway], ports))
        api = ProcessGroup(log_dir, env={**os.environ, **settings_env(seen_from(settings, api_host))})
        workers = ProcessGroup(log_dir, env={**os.environ, **settings_env(seen_from(settings, worker_host))})
        cleanup.callback(workers.stop_all)
        cleanup.callback(api.stop_all)
        api.start("api", api_host.prefix + api_argv(api_host.address, port_of(settings.api_url)))
        workers.start("worker", worker_host.prefix + worker_argv(1, 4))
        workers.start("scheduler", worker_host.prefix + scheduler_argv())
        wait_healthy(f"{settings.api_url}/healthz", api)
        workers.check_alive()
        stack = Stack(settings, simulator, api)
        cleanup.callback(stack.close)
        yield Deployment(stack, relay, api_host, worker_host)


def with_simulator(settings: Settings, simulator: SimulatorHandle) -> Settings:
    return replace(
        settings,
        sms_api_url=simulator.url,
        sms_app_key=simulator.app_key,
        sms_secret_key=simulator.secret_key,
        kakao_api_url=simulator.url,
        kakao_app_key=simulator.app_key,
        kakao_secret_key=simulator.secret_key,
        kakao_sender_key=simulator.kakao_sender_key,
    )


def test_a_job_runs_with_api_and_worker_on_separate_hosts(two_hosts: Deployment) -> None:
    stack, relay = two_hosts.stack, two_hosts.relay
    # Given the API on one host and the worker and scheduler on another
    api_pid = stack.processes.procs["api"].pid
    assert os.readlink(f"/proc/{api_pid}/ns/net") != os.readlink("/proc/self/ns/net")

    # When a job is submitted to the API over its host's link
    client = stack.new_tenant("many-hosts")
    phones = [f"010-6000-{i:04d}" for i in range(1500)]
    job_id = submit_sms(client, "여러 호스트", phones)

    # Then it completes, every recipient reaching the carrier once
    job = wait_finished(stack, client, job_id)
    assert job["status"] == "completed", job
    assert set(stack.submissions(job_id).values()) == {1}
    assert len(stack.submissions(job_id)) == len(phones)

    # And both hosts reached PostgreSQL, Redis and RabbitMQ over their links, and the worker's
    # host the carrier
    settings = stack.settings
    for host in (two_hosts.api_host, two_hosts.worker_host):
        for name in ("database_url", "redis_url", "broker_url"):
            assert relay.connections[host.gateway, port_of(getattr(settings, name))] > 0, (host, name)
    assert relay.connections[two_hosts.worker_host.gateway, port_of(settings.sms_api_url)] > 0
