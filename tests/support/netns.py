"""Separate network "hosts" for one test: Linux network namespaces joined to this one by veth pairs.

A host is a namespace with one veth link to the test's namespace: the host is ``10.213.N.2`` and
sees the test's side as ``10.213.N.1``. The machine's PostgreSQL, Redis and RabbitMQ listen on
loopback only, and their configuration is not ours to change, so `Relay` forwards TCP from the
link addresses to them: a host reaches a service at its gateway address, over the veth link.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass


class NamespacesUnavailable(Exception):
    """Network namespaces cannot be made here (no ``ip`` tool, or no CAP_NET_ADMIN)."""


@dataclass(frozen=True)
class Host:
    """One network namespace: run a command in it with ``argv`` prefixed by `prefix`."""

    namespace: str
    address: str
    gateway: str

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise NamespacesUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


@contextmanager
def network_hosts(count: int) -> Iterator[list[Host]]:
    """``count`` hosts, each linked to this namespace; removed (with their links) afterwards."""
    if shutil.which("ip") is None:
        raise NamespacesUnavailable("the ip tool (iproute2) is not installed")
    tag = secrets.token_hex(3)
    subnet = 100 + secrets.randbelow(100)  # 10.213.<subnet + i>.0/30, unlikely to meet another run
    with ExitStack() as stack:
        hosts = []
        for i in range(count):
            namespace, outside = f"bsg-{tag}-{i}", f"bsg{tag}{i}"
            _ip("netns", "add", namespace)
            stack.callback(subprocess.run, ["ip", "netns", "del", namespace], check=False, timeout=30)
            _ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            stack.callback(subprocess.run, ["ip", "link", "del", outside], check=False, timeout=30)
            net = f"10.213.{subnet + i}"
            _ip("addr", "add", f"{net}.1/30", "dev", outside)
            _ip("link", "set", outside, "up")
            _ip("-n", namespace, "addr", "add", f"{net}.2/30", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            hosts.append(Host(namespace, f"{net}.2", f"{net}.1"))
        yield hosts


class Relay:
    """Forwards TCP connections made to (address, port) to 127.0.0.1:port, in a thread of its own."""

    def __init__(self, addresses: list[str], ports: list[int]) -> None:
        self._addresses, self._ports = addresses, ports
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netns-relay", daemon=True)
        self._servers: list[asyncio.Server] = []
        self._error: BaseException | None = None
        #: Connections relayed, by (address they were made to, port).
        self.connections: Counter[tuple[str, int]] = Counter()

    def __enter__(self) -> Relay:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            for address in self._addresses:
                for port in self._ports:
                    server = self._loop.run_until_complete(
                        asyncio.start_server(self._forwarder(address, port), address, port)
                    )
                    self._servers.append(server)
        except BaseException as exc:  # reported to __enter__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        for server in self._servers:
            server.close()
        self._loop.close()

    def _forwarder(self, address: str, port: int):  # type: ignore[no-untyped-def]
        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections[address, port] += 1
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        return forward


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
