"""What the simulated AlimTalk provider remembers: templates, accepted requests, idempotency keys.

Kept apart from the SMS :class:`~carriers.simulator.state.Store` (its own references, request ids
and result order) but counted in the same summary counters, so a test reads one summary.

Time. ``accepted_at`` is the real time, so request-date windows line up with the caller's clock;
whether a result has arrived is judged against the *Kakao clock*, the real time plus the
``clock_offset_seconds`` knob, so a test can let two simulated days pass at once.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from carriers.nhn_alimtalk_codes import DELIVERED, TEMPLATE_APPROVED
from carriers.nhn_time import KST
from carriers.simulator.behaviour import NEVER

#: ``#{name}`` replacement variables.
VARIABLE = re.compile(r"#\{([^}]+)\}")

#: Approved templates every simulator starts with (and gets back on reset).
DEFAULT_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("ORDER_SHIPPED", "주문 발송 안내", "#{name}님, 주문하신 상품이 발송되었습니다. 송장번호: #{invoice}"),
    ("OTP", "인증번호", "인증번호는 #{code}입니다."),
    ("NOTICE", "공지", "balsong 알림톡 안내입니다."),
)


@dataclass(slots=True)
class KakaoTemplate:
    code: str
    name: str
    content: str
    #: ``TSC01`` requested, ``TSC02`` reviewing, ``TSC03`` approved, ``TSC04`` rejected.
    status: str
    created_at: float

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(VARIABLE.findall(self.content)))

    @property
    def approved(self) -> bool:
        return self.status == TEMPLATE_APPROVED


@dataclass(slots=True)
class KakaoRequest:
    """One accepted send request, recipients stored column by column."""

    request_id: str
    sender_key: str
    template_code: str
    #: The template's content when sent (``#{name}`` variables).
    content: str
    sender_grouping_key: str | None
    accepted_at: float
    #: ``accepted_at`` plus the Kakao result delay in force at acceptance (Kakao clock).
    result_at: float
    references: list[str | None] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)
    #: Final delivery result code per recipient.
    finals: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seqs)


class KakaoMessage:
    """A view of one accepted recipient."""

    __slots__ = ("index", "request")

    def __init__(self, request: KakaoRequest, index: int) -> None:
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
        return self.request.finals[self.index]

    def text(self) -> str:
        """The template filled with this recipient's parameters."""
        params = self.request.params[self.index]
        return VARIABLE.sub(lambda m: str(params.get(m.group(1), m.group(0))), self.request.content)

    def is_final(self, kakao_now: float) -> bool:
        return kakao_now >= self.request.result_at and self.request.finals[self.index] != NEVER

    def ledger_row(self, kakao_now: float, submissions: int) -> dict[str, Any]:
        """The same fields as an SMS ledger row (``send_no`` holds the sender key)."""
        final = self.is_final(kakao_now)
        code = self.final_code
        request = self.request
        return {
            "reference": self.reference,
            "recipient_no": self.recipient_no,
            "channel": "kakao",
            "send_no": request.sender_key,
            "body": self.text(),
            "title": None,
            "template_code": request.template_code,
            "request_id": request.request_id,
            "recipient_seq": self.seq,
            "accepted_at": request.accepted_at,
            "submissions": submissions,
            "final_status": ("delivered" if code == DELIVERED else "failed") if final else "processing",
            "result_code": code if final else None,
        }


class KakaoState:
    """Everything the AlimTalk simulator holds; the event loop is its only user, so no locks."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.templates: dict[str, KakaoTemplate] = {
            code: KakaoTemplate(code, name, content, TEMPLATE_APPROVED, 0.0)
            for code, name, content in DEFAULT_TEMPLATES
        }
        #: Accepted requests in acceptance order.
        self.accepted: list[KakaoRequest] = []
        #: The same, ordered by result time (the result-update API reads only its window).
        self.by_result: list[KakaoRequest] = []
        self.requests: dict[str, KakaoRequest] = {}
        #: reference -> (request, index) of its one accepted message.
        self.by_reference: dict[str, tuple[KakaoRequest, int]] = {}
        #: reference -> submissions after the first.
        self.resubmissions: dict[str, int] = {}
        #: ``X-NC-API-IDEMPOTENCY-KEY`` -> Kakao-clock time it may be used again.
        self.idempotency_keys: dict[str, float] = {}
        self._sequence = 0

    def new_request_id(self, now: float) -> str:
        self._sequence += 1
        stamp = datetime.fromtimestamp(now, KST).strftime("%Y%m%d%H%M%S")
        return f"{stamp}K{self._sequence:010d}"

    def accept(self, request: KakaoRequest) -> None:
        self.requests[request.request_id] = request
        self.accepted.append(request)
        bisect.insort(self.by_result, request, key=lambda r: r.result_at)
        for index, reference in enumerate(request.references):
            if reference is not None:
                self.by_reference[reference] = (request, index)

    def submissions(self, message: KakaoMessage) -> int:
        reference = message.reference
        return 1 if reference is None else 1 + self.resubmissions.get(reference, 0)

    def finalised_between(self, start: float, end: float) -> Iterator[KakaoMessage]:
        """Messages whose result time lies in ``[start, end)``, in result order."""
        low = bisect.bisect_left(self.by_result, start, key=lambda r: r.result_at)
        high = bisect.bisect_left(self.by_result, end, key=lambda r: r.result_at)
        for request in self.by_result[low:high]:
            for index in range(len(request)):
                yield KakaoMessage(request, index)

    def accepted_between(self, start: float, end: float) -> Iterator[KakaoMessage]:
        """Messages accepted in ``[start, end)``."""
        low = bisect.bisect_left(self.accepted, start, key=lambda r: r.accepted_at)
        high = bisect.bisect_left(self.accepted, end, key=lambda r: r.accepted_at)
        for request in self.accepted[low:high]:
            for index in range(len(request)):
                yield KakaoMessage(request, index)

    def ledger(self, kakao_now: float, chunk: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Ledger rows in acceptance order, ``chunk`` at a time."""
        rows: list[dict[str, Any]] = []
        for request in list(self.accepted):
            for index in range(len(request)):
                message = KakaoMessage(request, index)
                rows.append(message.ledger_row(kakao_now, self.submissions(message)))
                if len(rows) >= chunk:
                    yield rows
                    rows = []
        if rows:
            yield rows
