"""A whole local stack started from one command (``balsong run``, ``make run``, ``balsong demo``):
the carrier simulator, API, worker, scheduler and callback dispatcher, as the Procfile lists them.

It refuses to start on a taken port rather than talk to whatever answers there: each port is
checked free before its process starts, and a health answer counts only if it comes from our own
child (the answer carries its pid, whose process group is the one we started). It stays in the
foreground until Ctrl-C (or SIGTERM), then stops every process; if one of them dies, it stops the
others and says which, with its log.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from cli.exits import CommandError, Exit
from cli.processes import (
    ProcessGroup,
    api_argv,
    callbacks_argv,
    scheduler_argv,
    simulator_argv,
    worker_argv,
)
from engine.config import Settings

#: Where the processes' logs go (relative to the working directory).
LOG_DIR = Path(".run/logs")
#: Seconds a process has to answer its health check after starting.
HEALTH_TIMEOUT_SECONDS = 60.0


def host_port(url: str) -> tuple[str, int]:
    """The host and port of an ``http://host:port`` URL (80 or 443 when it names none)."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could bind ``host:port`` now (as uvicorn binds: with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def require_free(name: str, host: str, port: int, variable: str) -> None:
    """CommandError (refused) unless ``host:port`` is free, saying how to choose another port."""
    if not port_is_free(host, port):
        raise CommandError(
            f"cannot start the {name}: port {port} on {host} is in use (another balsong stack?);"
            f" stop whatever listens there, or choose another port with {variable}",
            Exit.REFUSED,
        )


def wait_own_health(
    url: str, group: ProcessGroup, name: str, timeout: float = HEALTH_TIMEOUT_SECONDS
) -> None:
    """Wait until ``url`` answers 200 from process ``name`` of ``group`` (or one it forked).

    An answer from any other process (another stack on the port) is refused: CommandError.
    """
    proc = group.procs[name]
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=2.0)
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code == 200:
            try:
                pid = response.json().get("pid")
            except (ValueError, AttributeError):
                pid = None
            if isinstance(pid, int) and _in_group(pid, proc.pid):
                return
            raise CommandError(
                f"{url} is answered by another process (pid {pid}), not the {name} started here;"
                " another stack holds the port",
                Exit.REFUSED,
            )
        if proc.poll() is not None:
            raise CommandError(
                f"the {name} exited with status {proc.returncode} at start; see {group.log_dir / name}.log",
                Exit.INTERNAL,
            )
        if time.monotonic() > deadline:
            raise CommandError(f"the {name} did not answer {url} within {timeout:.0f}s", Exit.UNAVAILABLE)
        time.sleep(0.2)


def _in_group(pid: int, leader: int) -> bool:
    # Each child is started in a session of its own, so it and whatever it forks (uvicorn's
    # workers) share the process group numbered after it.
    try:
        return os.getpgid(pid) == leader
    except ProcessLookupError:
        return False


@dataclass(frozen=True)
class LocalStack:
    """Where the started stack answers."""

    settings: Settings
    group: ProcessGroup

    @property
    def api_url(self) -> str:
        return self.settings.api_url

    @property
    def console_url(self) -> str:
        return f"{self.settings.api_url}/console"


def stack_settings(settings: Settings) -> Settings:
    """``settings`` with the metrics ports moved to free ones where the configured one is taken
    (a second stack on one machine: Prometheus does not scrape a development stack)."""

    def port(taken: int) -> int:
        return taken if port_is_free(settings.metrics_host, taken) else free_port(settings.metrics_host)

    return replace(
        settings,
        worker_metrics_port=port(settings.worker_metrics_port),
        scheduler_metrics_port=port(settings.scheduler_metrics_port),
        callbacks_metrics_port=port(settings.callbacks_metrics_port),
    )


def check_ports(settings: Settings) -> Settings:
    """CommandError (refused) if the simulator's or the API's port is taken; ``settings`` with
    free metrics ports (`stack_settings`)."""
    require_free(
        "carrier simulator", *host_port(settings.sms_api_url), "BALSONG_SMS_API_URL and BALSONG_KAKAO_API_URL"
    )
    require_free("API", *host_port(settings.api_url), "BALSONG_API_URL")
    return stack_settings(settings)


def _env(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    return {
        **base,
        # A development stack (the simulator, its public keys): its processes say so explicitly,
        # or in production mode they would refuse to start without real carrier secrets.
        "BALSONG_ENV": "development",
        "BALSONG_WORKER_METRICS_PORT": str(settings.worker_metrics_port),
        "BALSONG_SCHEDULER_METRICS_PORT": str(settings.scheduler_metrics_port),
        "BALSONG_CALLBACKS_METRICS_PORT": str(settings.callbacks_metrics_port),
    }


@contextmanager
def running(
    settings: Settings, *, simulator_args: tuple[str, ...] = (), log_dir: Path = LOG_DIR
) -> Iterator[LocalStack]:
    """Start the simulator (on ``BALSONG_SMS_API_URL``'s port), API (``BALSONG_API_URL``'s), worker,
    scheduler and callback dispatcher; yield once each answers; stop them all on the way out."""
    settings = check_ports(settings)
    sim_host, sim_port = host_port(settings.sms_api_url)
    api_host, api_port = host_port(settings.api_url)
    group = ProcessGroup(log_dir=log_dir, env=_env(settings, os.environ))
    try:
        group.start("simulator", simulator_argv(sim_host, sim_port, *simulator_args))
        group.start("api", api_argv(api_host, api_port))
        group.start("worker", worker_argv(settings.worker_processes, settings.worker_threads))
        group.start("scheduler", scheduler_argv())
        group.start("callbacks", callbacks_argv())
        wait_own_health(f"{settings.sms_api_url}/_simulator/health", group, "simulator")
        wait_own_health(f"{settings.api_url}/healthz", group, "api")
        yield LocalStack(settings, group)
    finally:
        group.stop_all()


def stay_up(stack: LocalStack, poll_seconds: float = 1.0) -> None:
    """Block until Ctrl-C or SIGTERM (then return, and the caller stops the stack), or until one
    of its processes exits (CommandError naming it and its log)."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(poll_seconds):
            for name, proc in stack.group.procs.items():
                if proc.poll() is not None:
                    raise CommandError(
                        f"the {name} exited with status {proc.returncode}; the stack is stopped;"
                        f" see {stack.group.log_dir / name}.log",
                        Exit.INTERNAL,
                    )
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("\nstopping the stack ...", flush=True)


def first_job_curl(api_url: str, key: str, sender: str, phone: str = "010-1234-5678") -> str:
    """A ready ``curl`` that submits a one-recipient SMS job."""
    body = (
        f'{{"channel": "sms", "sender": "{sender}", "body": "[balsong] 첫 발송입니다",'
        f' "recipients": [{{"phone": "{phone}"}}]}}'
    )
    return (
        f"curl -sS -X POST {api_url}/v1/jobs \\\n"
        f"  -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n"
        f"  -d '{body}'"
    )
