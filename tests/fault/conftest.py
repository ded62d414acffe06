"""Fault suite fixtures: private PostgreSQL, Redis and RabbitMQ servers (which the scenarios stop
and start; the machine's shared servers are never touched), and per test an isolated database,
key prefix and vhost on them, migrated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.config import Settings
from tests.fault.harness import FAULT_OVERRIDES, TableRow, settings_on, write_row
from tests.support.private_servers import PrivateServers, private_servers


@pytest.fixture(scope="session")
def servers() -> Iterator[PrivateServers]:
    with private_servers() as running:
        yield running


@pytest.fixture
def fault_settings(servers: PrivateServers) -> Iterator[Settings]:
    """Settings on the private servers; the test process reads them too (so that what it
    publishes or looks up goes to the same vhost and database as the stack's processes)."""
    with settings_on(servers, **FAULT_OVERRIDES) as isolated:
        yield isolated


@pytest.fixture
def table_row() -> Iterator[list[TableRow]]:
    """A scenario appends its row here; it is written to the fault table (``bench/fault_suite.py``)."""
    rows: list[TableRow] = []
    yield rows
    for row in rows:
        write_row(row)
