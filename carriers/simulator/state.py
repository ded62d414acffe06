"""What the simulated provider remembers: accepted messages, templates, categories, counters.

Built for volume: one :class:`SendRequest` per accepted request holds everything its recipients
share; one small :class:`Message` per accepted recipient holds the rest. A message's text
(template substitution), status and result date are worked out only when someone reads them.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

#: The provider's clock: Korea Standard Time.
KST = timezone(timedelta(hours=9), "KST")

#: Delivered, per the result codes of receiving.
DELIVERED = "1000"


@dataclass(slots=True)
class SendRequest:
    """One accepted send request."""

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
    messages: list[Message] = field(default_factory=list)


@dataclass(slots=True)
class Message:
    """One accepted recipient."""

    request: SendRequest
    reference: str | None
    recipient_no: str
    seq: int
    #: ``templateParameter`` of this recipient, if any.
    params: dict[str, Any] | None
    #: Final result code of receiving, fixed at acceptance.
    final_code: str
    submissions: int = 1

    def text(self) -> str:
        """The body as the handset receives it."""
        body = self.request.body
        if self.params:
            for key, value in self.params.items():
                body = body.replace("##" + key + "##", str(value))
        return body

    def is_final(self, now: float) -> bool:
        return now >= self.request.result_at

    def ledger_row(self, now: float) -> dict[str, Any]:
        final = self.is_final(now)
        request = self.request
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
            "submissions": self.submissions,
            "final_status": ("delivered" if self.final_code == DELIVERED else "failed")
            if final
            else "processing",
            "result_code": self.final_code if final else None,
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
        #: Accepted messages in acceptance order (``accepted_at`` never decreases).
        self.messages: list[Message] = []
        self.requests: dict[str, SendRequest] = {}
        #: channel -> reference -> message, for deduplication and lookup.
        self.by_reference: dict[str, dict[str, Message]] = {"sms": {}, "lms": {}}
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
            "rejected_recipients": 0,
        }
        self.by_channel: dict[str, int] = {"sms": 0, "lms": 0}
        self._sequence = 0

    def new_request_id(self, now: float) -> str:
        """``yyyyMMddHHmmss`` (KST) and a counter: 25 characters like the provider's."""
        self._sequence += 1
        stamp = datetime.fromtimestamp(now, KST).strftime("%Y%m%d%H%M%S")
        return f"{stamp}{self._sequence:011d}"

    def accept(self, request: SendRequest) -> None:
        self.requests[request.request_id] = request
        self.messages.extend(request.messages)
        self.by_channel[request.channel] += len(request.messages)
        self.counters["accepted_requests"] += 1

    def between(self, start: float, end: float) -> list[Message]:
        """Messages accepted in ``[start, end)``."""
        low = bisect.bisect_left(self.messages, start, key=lambda m: m.request.accepted_at)
        high = bisect.bisect_left(self.messages, end, key=lambda m: m.request.accepted_at)
        return self.messages[low:high]

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": len(self.messages),
            **self.counters,
            "by_channel": dict(self.by_channel),
            "templates": len(self.templates),
        }

    def ledger(self, chunk: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Ledger rows in acceptance order, ``chunk`` at a time."""
        now = time.time()
        messages = list(self.messages)
        for start in range(0, len(messages), chunk):
            yield [m.ledger_row(now) for m in messages[start : start + chunk]]
