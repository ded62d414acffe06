"""Serving the samples of every process of one kind, in Prometheus's text format."""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

#: Set by `cli.multiprocess.prepare` when the process group starts.
ENV = "PROMETHEUS_MULTIPROC_DIR"


def process_registry(*collectors: Collector) -> CollectorRegistry:
    """A registry adding up the sample files of every process of this kind, plus ``collectors``.

    Without a multiprocess directory (an app built in a test process), this process's own
    default registry.
    """
    path = os.environ.get(ENV)
    if not path:
        for collector in collectors:
            REGISTRY.register(collector)
        return REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=path)
    for collector in collectors:
        registry.register(collector)
    return registry


def serve(host: str, port: int, registry: CollectorRegistry) -> None:
    """Serve ``registry`` on ``host:port`` from a daemon thread."""
    start_http_server(port, addr=host, registry=registry)
