"""Debian's Chromium (scripts/ensure-system-packages.sh installs it), driven by Playwright: no
browser download."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    """A headless Chromium for the length of the block; fails the test if none is installed."""
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed: run scripts/ensure-system-packages.sh")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()
