"""Session fixtures: an isolated database / Redis prefix / vhost, and balsong's processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import Settings
from engine.db import upgrade
from tests.support.services import isolated_settings
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    """Settings of this test session: its own database (migrated), key prefix and vhost."""
    with isolated_settings() as isolated:
        upgrade(isolated.database_url)
        yield isolated


@pytest.fixture(scope="session")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API, worker (2 processes), scheduler and simulator, running for the whole session."""
    log_dir: Path = tmp_path_factory.mktemp("logs")
    with running_stack(settings, log_dir, result_delay_ms=300) as running:
        yield running
