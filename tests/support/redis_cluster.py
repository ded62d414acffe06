"""A private, real Redis Cluster of three masters on free ports, for one test module.

The machine's shared Redis is never touched: each node is a ``redis-server --cluster-enabled yes``
with its own temporary directory, and ``redis-cli --cluster create`` assigns the 16384 slots.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.support.simulator import free_port

MASTERS = 3


@contextmanager
def running_redis_cluster() -> Iterator[str]:
    """Start the cluster; yields the ``redis+cluster://`` URL of its first node."""
    with tempfile.TemporaryDirectory(prefix="balsong-redis-cluster-") as root, ExitStack() as stack:
        ports = [free_port() for _ in range(MASTERS)]
        for port in ports:
            stack.enter_context(_node(Path(root), port))
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait_cluster_ok(ports)
        yield f"redis+cluster://127.0.0.1:{ports[0]}/0"


@contextmanager
def running_redis_server() -> Iterator[str]:
    """One private Redis server (no cluster), e.g. for counting the commands balsong sends."""
    with tempfile.TemporaryDirectory(prefix="balsong-redis-") as root:
        port = free_port()
        with _node(Path(root), port, cluster=False):
            yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def _node(root: Path, port: int, *, cluster: bool = True) -> Iterator[None]:
    directory = root / str(port)
    directory.mkdir()
    log = (directory / "redis.log").open("wb")
    options = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    options += ["--save", "", "--appendonly", "no"]
    if cluster:
        options += ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"]
        options += ["--cluster-config-file", str(directory / "nodes.conf")]
        # The cluster bus takes its own free port (by default port + 10000, which may be taken).
        options += ["--cluster-port", str(free_port())]
    process = subprocess.Popen(["redis-server", *options], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ping(port, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait_ping(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server on port {port} exited with {process.returncode}")
        try:
            with Redis(port=port) as client:
                client.ping()
                return
        except RedisConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {port} did not answer within 30 s")


def _wait_cluster_ok(ports: list[int]) -> None:
    """Until every node agrees the cluster is up (slots covered, nodes known to each other)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = []
        for port in ports:
            with Redis(port=port) as client:
                states.append(client.cluster("info").get("cluster_state"))  # type: ignore[no-untyped-call]
        if states == ["ok"] * len(ports):
            return
        time.sleep(0.1)
    raise RuntimeError(f"Redis Cluster not ready within 60 s: {states}")
