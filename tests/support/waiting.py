"""Waiting in tests for what other processes bring about."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 60.0, what: str = "condition") -> T:
    """``condition()``'s first truthy answer, asked every 0.2 s; fails the test after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = condition()
        if answer:
            return answer
        assert time.monotonic() < deadline, f"{what} not met in {timeout:.0f} s"
        time.sleep(0.2)
