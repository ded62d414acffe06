"""Session fixtures: an isolated database / Redis prefix / vhost, and balsong's processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import psycopg
import pytest

from actors.broker import install_broker
from engine.config import Settings, get_settings
from engine.db import upgrade
from tests.support.services import isolated_settings, settings_env
from tests.support.stack import Stack, running_stack

#: Short carrier timeout and reconciliation delay, so unknown outcomes resolve within a test.
TEST_OVERRIDES = {
    "carrier_timeout_seconds": 2.0,
    "reconcile_after_seconds": 4.0,
    "kakao_report_poll_seconds": 1.0,
    "kakao_report_settle_seconds": 1.0,
    # A test machine's CPUs are busy with the suite itself: callbacks would wait for them up to
    # 10 s at every step. Tests check what is delivered; the hold has tests of its own.
    "callback_busy_hold_seconds": 0.0,
}


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    """Settings of this test session: its own database (migrated), key prefix and vhost. The test
    process itself reads them too (to publish messages and build a runtime like the workers')."""
    with isolated_settings(**TEST_OVERRIDES) as isolated:
        upgrade(isolated.database_url)
        saved = dict(os.environ)
        os.environ.update(settings_env(isolated))
        get_settings.cache_clear()
        try:
            yield isolated
        finally:
            os.environ.clear()
            os.environ.update(saved)
            get_settings.cache_clear()


@pytest.fixture(scope="session")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API, worker (2 processes), scheduler and simulator, running for the whole session."""
    log_dir: Path = tmp_path_factory.mktemp("logs")
    with running_stack(settings, log_dir, result_delay_ms=300) as running:
        yield running


@pytest.fixture(scope="session")
def broker(settings: Settings) -> Iterator[dramatiq.Broker]:
    """The broker installed in the test process, as balsong's processes install theirs at start:
    for tests that publish messages themselves. Closed at the end (its connections with it)."""
    installed = install_broker(settings)
    yield installed
    installed.close()


@pytest.fixture
def conn(settings: Settings) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the session's database."""
    with psycopg.connect(settings.database_url, autocommit=True) as connection:
        yield connection
