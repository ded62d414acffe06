"""Private PostgreSQL, Redis and RabbitMQ servers that a fault test may stop and start at will.

The machine's own servers are shared with other test runs, so the fault suite never restarts
them: it starts its own instances on free ports, from temporary directories, and restarts those.
A restart is a real one: the server process exits and a new one starts on the same port and data
directory (Redis runs without persistence, as balsong's Redis may: its data is gone after a
restart). PostgreSQL and RabbitMQ refuse to run as root, so as root they run as their system
users (``postgres``, ``rabbitmq``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from tests.support.simulator import free_port

#: Longest wait for a server to accept connections after a start, in seconds.
START_TIMEOUT_SECONDS = 90.0


def _as_user(user: str, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if os.geteuid() == 0 else argv


def _owned_tempdir(prefix: str, user: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(path, user, user)
    return path


def _wait(check: object, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up within {START_TIMEOUT_SECONDS:.0f}s")
        time.sleep(0.2)


@dataclass
class PrivateRedis:
    """A redis-server keeping nothing on disk (``--save ""``, no append-only file)."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        try:
            _wait(client.ping, f"redis on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb + pg_ctl), trust authentication, user postgres."""

    port: int
    data_dir: Path
    socket_dir: Path

    @classmethod
    def create(cls) -> PrivatePostgres:
        base = _owned_tempdir("balsong-fault-pg-", "postgres")
        server = cls(free_port(), base / "data", base)
        subprocess.run(
            _as_user(
                "postgres",
                [_pg_bin("initdb"), "-D", str(server.data_dir), "-U", "postgres", "-A", "trust", "--no-sync"],
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        return server

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_user(
                "postgres",
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-o",
                    options,
                    "-l",
                    str(self.socket_dir / "server.log"),
                    "-w",
                    "start",
                ],
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        _wait(lambda: psycopg.connect(self.admin_url, connect_timeout=2).close() is None, "postgres")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``fast`` ends open sessions (what a restart does to the application)."""
        subprocess.run(
            _as_user("postgres", [_pg_bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"]),
            check=False,
            capture_output=True,
            timeout=120,
        )

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found under /usr/lib/postgresql/*/bin")
    return found[-1]


@dataclass
class PrivateRabbitmq:
    """A second RabbitMQ node (its own name, ports, data and logs), no plugins."""

    node: str
    port: int
    dist_port: int
    base: Path

    @classmethod
    def create(cls) -> PrivateRabbitmq:
        base = _owned_tempdir("balsong-fault-rabbit-", "rabbitmq")
        (base / "enabled_plugins").write_text("")
        # Its own config file, so the machine's (which names the shared node's listener) is unused.
        (base / "rabbitmq.conf").write_text("loopback_users = none\n")
        if os.geteuid() == 0:
            for name in ("enabled_plugins", "rabbitmq.conf"):
                shutil.chown(base / name, "rabbitmq", "rabbitmq")
        return cls(f"fault-{uuid.uuid4().hex[:8]}@localhost", free_port(), free_port(), base)

    @property
    def amqp_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
        }

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["rabbitmqctl", "-q", "-n", self.node, *args], check=True, capture_output=True, timeout=timeout
        )

    def start(self) -> None:
        subprocess.run(
            ["rabbitmq-server", "-detached"], env=self._env(), check=True, capture_output=True, timeout=60
        )

        def up() -> bool:
            self.ctl("await_startup", "--timeout", "30", timeout=40)
            return True

        _wait(up, f"rabbitmq node {self.node}")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.ctl("stop", timeout=60)

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@dataclass
class PrivateServers:
    postgres: PrivatePostgres
    redis: PrivateRedis
    rabbitmq: PrivateRabbitmq


@contextmanager
def private_servers() -> Iterator[PrivateServers]:
    """PostgreSQL, Redis and RabbitMQ of our own, running until the block ends."""
    with ExitStack() as stack:
        postgres = PrivatePostgres.create()
        stack.callback(postgres.remove)
        postgres.start()
        cache = PrivateRedis(free_port())
        stack.callback(cache.stop)
        cache.start()
        rabbit = PrivateRabbitmq.create()
        stack.callback(rabbit.remove)
        rabbit.start()
        yield PrivateServers(postgres, cache, rabbit)
