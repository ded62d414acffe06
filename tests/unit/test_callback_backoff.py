"""A failing callback endpoint rests 1 s, doubling, up to the longest rest, with jitter."""

from __future__ import annotations

import random
from datetime import timedelta

from engine.callbacks.dispatcher import backoff

LONGEST = timedelta(minutes=10)


def test_the_rest_doubles_from_one_second_up_to_the_longest() -> None:
    # Given a random source that always draws its maximum (no jitter taken off)
    class Top(random.Random):
        def random(self) -> float:
            return 1.0

    top = Top()
    # When endpoints fail 1, 2, 3 ... times in a row
    rests = [backoff(failures, LONGEST, top).total_seconds() for failures in range(1, 14)]
    # Then they rest 1, 2, 4 ... seconds, never more than the longest
    assert rests[:5] == [1, 2, 4, 8, 16]
    assert rests[-1] == LONGEST.total_seconds()
    assert backoff(10_000, LONGEST, top) == LONGEST


def test_jitter_keeps_each_rest_between_half_and_all_of_it() -> None:
    rand = random.Random(3)
    for failures in range(1, 20):
        full = min(timedelta(seconds=2 ** (failures - 1)), LONGEST)
        for _ in range(50):
            assert full / 2 <= backoff(failures, LONGEST, rand) <= full
