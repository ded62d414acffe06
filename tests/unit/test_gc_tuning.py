"""`engine.runtime.tune_garbage_collector`: the young generation collected less often, never more often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from engine.runtime import YOUNG_GENERATION_THRESHOLD, tune_garbage_collector


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


@pytest.mark.usefixtures("thresholds")
def test_the_default_young_threshold_is_raised_and_the_older_ones_kept() -> None:
    gc.set_threshold(700, 10, 10)
    tune_garbage_collector()
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, 10, 10)


@pytest.mark.usefixtures("thresholds")
def test_a_process_already_collecting_less_often_is_left_as_it_is() -> None:
    gc.set_threshold(50_000, 20, 10)
    tune_garbage_collector()
    assert gc.get_threshold() == (50_000, 20, 10)
