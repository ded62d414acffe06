"""What the simulated provider remembers: accepted messages, templates, categories, counters.

Built for volume: one :class:`SendRequest` per accepted request holds what its recipients share
and, in columns, what they do not. A :class:`Message` view, the text (template substitution),
status and result date are made only when someone reads them.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from carriers.nhn_time import KST
from carriers.simulator.behaviour import NEVER

#: The provider's clock: Korea Standard Time.

#: Delivered, per the result codes of receiving.
DELIVERED = "1000"
#: More than the most recipients of one request.
SLOT_WIDTH = 1024


@dataclass(slots=True)
class SendRequest:
    """One accepted send request, its recipients stored column by column (cheap to append)."""

    request_id: str
    #: ``"sms"`` or ``"lms"`` (balsong's channel names).
    channel: str
    send_no: str
    #: The literal body, or the template's body with ``##key##`` replacement keys.
    body: str
    title: str | None
    template_id: str | None
    accepted_at: float
    #: ``accepted_at`` plus the result delay in force at acceptance.
    result_at: float
    references: list[str | None] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    #: ``templateParameter`` per recipient (``None`` where absent).
    params: list[dict[str, Any] | None] = field(default_factory=list)
    #: Final result code per recipient; ``None`` when every one is delivered.
    finals: list[str] | None = None

    def __len__(self) -> int:
        return len(self.seqs)

    def message(self, index: int) -> Message:
        return Message(self, index)


class Message:
    """A view of one accepted recipient, made only when someone reads it."""

    __slots__ = ("index", "request")

    def __init__(self, request: SendRequest, index: int) -> None:
        self.request = request
        self.index = index

    @property
    def reference(self) -> str | None:
        return self.request.references[self.index]

    @property
    def recipient_no(self) -> str:
        return self.request.numbers[self.index]

    @property
    def seq(self) -> int:
        return self.request.seqs[self.index]

    @property
    def final_code(self) -> str:
        finals = self.request.finals
        return DELIVERED if finals is None else finals[self.index]

    def text(self) -> str:
        """The body as the handset receives it."""
        body = self.request.body
        params = self.request.params[self.index]
        if params:
            for key, value in params.items():
                body = body.replace("##" + key + "##", str(value))
        return body

    def is_final(self, now: float) -> bool:
        finals = self.request.finals
        return now >= self.request.result_at and (finals is None or finals[self.index] != NEVER)

    def ledger_row(self, now: float, submissions: int) -> dict[str, Any]:
        final = self.is_final(now)
        request = self.request
        code = self.final_code
        return {
            "reference": self.reference,
            "recipient_no": self.recipient_no,
            "channel": request.channel,
            "send_no": request.send_no,
            "body": self.text(),
            "title": request.title,
            "request_id": request.request_id,
            "recipient_seq": self.seq,
            "accepted_at": request.accepted_at,
            "submissions": submissions,
            "final_status": ("delivered" if code == DELIVERED else "failed") if final else "processing",
            "result_code": code if final else None,
        }


@dataclass(slots=True)
class Template:
    template_id: str
    category_id: int
    name: str
    send_type: str
    send_no: str
    title: str | None
    body: str
    created_at: float


class Store:
    """Everything the simulator holds; the event loop is its only user, so no locks."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        #: Accepted requests in acceptance order (``accepted_at`` never decreases).
        self.accepted: list[SendRequest] = []
        #: The last list query's matches, by query (see ``queries.list_messages``).
        self.list_cache: dict[Any, tuple[float, list[Message]]] = {}
        #: The same requests ordered by result time, so report polls read only their window.
        self.by_result: list[SendRequest] = []
        self.requests: dict[str, SendRequest] = {}
        #: Every validated send request; a message's place is ``slot * SLOT_WIDTH + index``.
        self.slots: list[SendRequest] = []
        #: channel -> reference -> place (an int: nothing more for the garbage collector to scan).
        self.by_reference: dict[str, dict[str, int]] = {"sms": {}, "lms": {}}
        #: channel -> reference -> submissions after the first.
        self.resubmissions: dict[str, dict[str, int]] = {"sms": {}, "lms": {}}
        self.accepted_count = 0
        #: channel -> reference -> submit-time refusals so far (a retry draws again).
        self.refusals: dict[str, dict[str, int]] = {"sms": {}, "lms": {}}
        self.templates: dict[str, Template] = {}
        self.categories: list[dict[str, Any]] = [
            {
                "categoryId": 1,
                "categoryParentId": 0,
                "depth": 0,
                "sort": 0,
                "categoryName": "Category",
                "categoryDesc": "Highest category",
                "useYn": "Y",
            }
        ]
        self.counters: dict[str, int] = {
            "requests": 0,
            "accepted_requests": 0,
            "refused_requests": 0,
            "timeouts": 0,
            "duplicate_submissions": 0,
            "throttled_requests": 0,
            "rejected_recipients": 0,
        }
        self.by_channel: dict[str, int] = {"sms": 0, "lms": 0, "kakao": 0}
        #: channel -> raw rows a test asked the next report poll to be served verbatim (test
        #: route ``/_simulator/results/{kind}``): how tests feed the poller malformed results.
        self.injected_results: dict[str, list[Any]] = {"sms": [], "lms": []}
        self._sequence = 0
        self._rate_windows: dict[str, RateWindow] = {}

    def rate_window(self, channel: str) -> RateWindow:
        """Recipients accepted on ``channel`` over the last second (the simulated cap)."""
        return self._rate_windows.setdefault(channel, RateWindow())

    def new_request_id(self, now: float) -> str:
        """``yyyyMMddHHmmss`` (KST) and a counter: 25 characters like the provider's."""
        self._sequence += 1
        stamp = datetime.fromtimestamp(now, KST).strftime("%Y%m%d%H%M%S")
        return f"{stamp}{self._sequence:011d}"

    def open_slot(self, request: SendRequest) -> int:
        """Number ``request`` so its messages can be found by place; its first place."""
        self.slots.append(request)
        return (len(self.slots) - 1) * SLOT_WIDTH

    def at(self, place: int) -> Message:
        """The message at ``place`` (see :attr:`by_reference`)."""
        return Message(self.slots[place // SLOT_WIDTH], place % SLOT_WIDTH)

    def accept(self, request: SendRequest) -> None:
        self.requests[request.request_id] = request
        if len(request):
            self.accepted.append(request)
            bisect.insort(self.by_result, request, key=lambda r: r.result_at)
        self.accepted_count += len(request)
        self.by_channel[request.channel] += len(request)
        self.counters["accepted_requests"] += 1

    def between(self, start: float, end: float) -> Iterator[Message]:
        """Messages accepted in ``[start, end)``."""
        return _messages_in(self.accepted, lambda r: r.accepted_at, start, end)

    def finalised_between(self, start: float, end: float) -> Iterator[Message]:
        """Messages whose final result came in ``[start, end)``."""
        return _messages_in(self.by_result, lambda r: r.result_at, start, end)

    def submissions(self, message: Message) -> int:
        reference = message.reference
        if reference is None:
            return 1
        return 1 + self.resubmissions[message.request.channel].get(reference, 0)

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted_count,
            **self.counters,
            "by_channel": dict(self.by_channel),
            "templates": len(self.templates),
        }

    def ledger(self, chunk: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Ledger rows in acceptance order, ``chunk`` at a time."""
        now = time.time()
        rows: list[dict[str, Any]] = []
        for request in list(self.accepted):
            for index in range(len(request)):
                message = Message(request, index)
                rows.append(message.ledger_row(now, self.submissions(message)))
                if len(rows) >= chunk:
                    yield rows
                    rows = []
        if rows:
            yield rows


def _messages_in(
    requests: list[SendRequest], time_of: Callable[[SendRequest], float], start: float, end: float
) -> Iterator[Message]:
    """Messages of ``requests`` (sorted by ``time_of``) whose time lies in ``[start, end)``."""
    low = bisect.bisect_left(requests, start, key=time_of)
    high = bisect.bisect_left(requests, end, key=time_of)
    for request in requests[low:high]:
        for index in range(len(request)):
            yield Message(request, index)


class RateWindow:
    """Recipients admitted over the last second, for the simulator's own rate cap."""

    def __init__(self) -> None:
        self._admitted: deque[tuple[float, int]] = deque()
        self._total = 0

    def admit(self, now: float, count: int, cap: float) -> bool:
        """Admit ``count`` recipients at ``now`` unless that takes the last second past ``cap``."""
        while self._admitted and self._admitted[0][0] <= now - 1.0:
            self._total -= self._admitted.popleft()[1]
        if self._total + count > cap:
            return False
        self._admitted.append((now, count))
        self._total += count
        return True
