"""`scheduler.read_ahead`: pages in order, errors in their place, a caller that stops early."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from scheduler.read_ahead import read_ahead


def test_pages_come_in_order_and_the_next_is_fetched_while_the_last_is_held() -> None:
    # Given pages whose fetcher records how far it got
    fetched: list[int] = []
    next_fetched = threading.Event()

    def pages() -> Iterator[int]:
        for n in range(3):
            fetched.append(n)
            if n == 1:
                next_fetched.set()
            yield n

    # When the caller holds the first page
    reader = read_ahead(pages())
    first = next(reader)

    # Then the second is fetched meanwhile, and every page comes, in order
    assert next_fetched.wait(5)
    assert [first, *reader] == [0, 1, 2]
    assert fetched == [0, 1, 2]


def test_an_error_fetching_a_page_is_raised_after_the_pages_before_it() -> None:
    def pages() -> Iterator[int]:
        yield 1
        raise ConnectionError("carrier gone")

    reader = read_ahead(pages())
    assert next(reader) == 1
    with pytest.raises(ConnectionError, match="carrier gone"):
        next(reader)


def test_a_caller_that_stops_early_stops_the_fetching() -> None:
    # Given endless pages
    fetched: list[int] = []

    def pages() -> Iterator[int]:
        n = 0
        while True:
            fetched.append(n)
            yield n
            n += 1

    # When the caller takes two and stops
    reader = read_ahead(pages())
    assert [next(reader), next(reader)] == [0, 1]
    reader.close()

    # Then no more are fetched than the one ahead and the one being put
    count = len(fetched)
    assert count <= 4
    threading.Event().wait(0.2)
    assert len(fetched) == count
