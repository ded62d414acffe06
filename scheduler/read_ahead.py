"""Pages read one ahead: while the caller works on one page, a thread fetches the next.

A report poll waits on each page's HTTP answer (the carrier renders a thousand rows) and then
spends as long again in Python on it; fetching the next page meanwhile overlaps the two.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar, cast

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(pages: Iterable[T]) -> Iterator[T]:
    """The items of ``pages`` in order, the next one fetched by a thread while the caller holds
    the last; an error raised fetching a page is raised here, in its place. A caller that stops
    early waits for the page being fetched, which is dropped."""
    ahead: queue.Queue[object] = queue.Queue(maxsize=1)
    stopped = threading.Event()

    def fetch() -> None:
        try:
            for page in pages:
                if stopped.is_set():
                    return
                ahead.put(page)
        except BaseException as exc:  # handed to the caller, raised there
            ahead.put(_Failed(exc))
            return
        ahead.put(_DONE)

    thread = threading.Thread(target=fetch, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ahead.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield cast(T, item)
    finally:
        stopped.set()
        # Unblock a fetcher waiting to put a page nobody will take.
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                ahead.get(timeout=0.1)
