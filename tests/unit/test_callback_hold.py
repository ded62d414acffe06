"""Callbacks wait while the CPUs are contended (engine.callbacks.cpu_pressure), up to a bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.callbacks import cpu_pressure
from engine.callbacks.cpu_pressure import CpuPressure
from engine.callbacks.dispatcher import MAX_EVENTS, NEVER_FULL, Dispatcher
from engine.clock import SystemClock
from engine.config import Settings


def pressure_file(path: Path, stalled_us: int) -> None:
    path.write_text(
        f"some avg10=0.00 avg60=0.00 avg300=0.00 total={stalled_us}\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(cpu_pressure.time, "monotonic", lambda: now[0])
    return now


def test_contended_when_tasks_waited_a_fifth_of_the_last_second(tmp_path: Path, clock: list[float]) -> None:
    path = tmp_path / "cpu.pressure"
    pressure_file(path, 5_000_000)
    cpu = CpuPressure(path)
    assert not cpu.contended()  # a first reading measures nothing
    clock[0] += 1.0
    pressure_file(path, 5_000_000 + 300_000)  # 30 % of the second
    assert cpu.contended()
    clock[0] += 0.5
    pressure_file(path, 5_000_000 + 300_000 + 10_000)
    assert cpu.contended()  # within the window: the last measure stands
    clock[0] += 0.5
    assert not cpu.contended()  # 1 % of the last second


def test_never_contended_without_pressure_information(tmp_path: Path) -> None:
    assert not CpuPressure(tmp_path / "missing").contended()
    garbled = tmp_path / "garbled"
    garbled.write_text("")
    assert not CpuPressure(garbled).contended()


class Busy:
    def __init__(self, busy: bool) -> None:
        self.busy = busy

    def contended(self) -> bool:
        return self.busy


NOW = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("busy", "hold", "rule"),
    [
        # A full request goes at once when the CPUs are free.
        (False, 10.0, (MAX_EVENTS, NOW - timedelta(seconds=1))),
        # Events wait up to the hold while the CPUs are busy.
        (True, 10.0, (NEVER_FULL, NOW - timedelta(seconds=10))),
        # No hold when it is off.
        (True, 0.0, (MAX_EVENTS, NOW - timedelta(seconds=1))),
    ],
    ids=["free", "busy", "hold off"],
)
def test_when_a_request_is_due(busy: bool, hold: float, rule: tuple[int, datetime]) -> None:
    settings = Settings.from_env({}, callback_batch_seconds=1.0, callback_busy_hold_seconds=hold)
    d = Dispatcher(None, settings, SystemClock(), cpu=Busy(busy))  # type: ignore[arg-type]
    try:
        assert d.due_rule(NOW) == rule
    finally:
        d.close()
