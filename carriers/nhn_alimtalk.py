"""NHN Cloud KakaoTalk Bizmessage AlimTalk API v2.3 as a :class:`Carrier`.

Follows the published guide (``TOAST-DOCS/Alimtalk`` ``en/alimtalk-api-guide.md``,
``en/error-code.md``); every path is under ``/alimtalk/v2.3/appkeys/{appkey}`` with the
``X-Secret-Key`` header:

- ``POST /messages`` ("Send Replacement Message Request"): ``senderKey``, ``templateCode``, up to
  1,000 ``recipientList`` entries of ``recipientNo``, ``templateParameter`` ("Replacement key
  (#{key})" -> value) and our reference as ``recipientGroupingKey``; the batch's idempotency key
  in ``X-NC-API-IDEMPOTENCY-KEY`` ("If a request is made with the same key for 10 minutes, the
  request will be failed", code -1005). The answer's ``message.sendResults`` has one entry per
  recipient.
- ``GET /messages`` ("List Messages", by ``recipientGroupingKey`` within a request-date window
  of at most 30 days, ``yyyy-MM-dd HH:mm``) for :meth:`~NhnAlimtalkCarrier.lookup`, and by
  ``requestId`` to learn the references of a request.
- ``GET /message-results`` ("Query Updates of Message Result", ``startUpdateDate`` /
  ``endUpdateDate`` ``yyyy-MM-dd HH:mm``, pages of up to 1,000, no total count) for
  :meth:`~NhnAlimtalkCarrier.report_pages`. Its rows carry no ``recipientGroupingKey``, so each
  request's references are read once with the list API by ``requestId`` and kept in a small
  cache.
- ``GET /senders/{senderKey}/templates/{templateCode}`` ("Get Template") for
  :meth:`~NhnAlimtalkCarrier.template`.
- ``GET /senders/{senderKey}/templates`` ("List Templates": ``templateCode``, ``templateName``,
  ``templateStatus`` filters, ``pageNum`` from 1, ``pageSize`` up to 1,000; the answer's
  ``templateListResponse`` holds ``templates`` and ``totalCount``) for
  :meth:`~NhnAlimtalkCarrier.templates`, asked with ``templateStatus=TSC03`` (approved).

Fallback. The guide's ``resendParameter`` makes the provider resend a failed AlimTalk as SMS/LMS.
balsong does its own fallback (so that its rate limits, sender registration and pricing apply),
so nothing is sent by default. Pass ``provider_fallback`` to send one: ``ProviderFallback()``
(``isResend: false``) overrides a fallback configured in the console ("If alternative delivery
is configured in the console, it is sent as alternative delivery by default"), and
``ProviderFallback(enabled=True, ...)`` asks the provider to fall back itself.

Outcomes. Per recipient, ``resultCode == 0`` is ``ACCEPTED`` with ``carrier_id
"<requestId>:<recipientSeq>"``; -9999/-7000 are ``RETRY``; any other code is ``FAILED``. For the
whole request: connection refused, connect timeout, 408, 429 and 503 raise
:class:`CarrierRetryable`; a read timeout, a dropped connection, an unreadable answer or another
5xx raise :class:`CarrierOutcomeUnknown`, and so does -1005 (an earlier request with this key got
through: reconcile by lookup); -1031 (every recipient refused) is answered with the per-recipient
outcomes; other ``isSuccessful: false`` answers raise :class:`CarrierRetryable` for -9999/-7000
and :class:`CarrierRejected` otherwise (-3003 unknown template, -3005 not approved, -2017 unknown
sender key ...).

Results. A message is final when it has a delivery result code: ``1000`` is ``DELIVERED``, any
other is ``FAILED`` with Kakao's code and text (3019 not a KakaoTalk user, 3020 AlimTalk blocked,
3016 template mismatch ...), as are ``FAILED`` and ``CANCEL`` statuses. Until then (Kakao may
take up to two days; 3005 "sent but not confirmed" included) a message is ``ACCEPTED``.

Dates. The API speaks Korean time (KST, UTC+9) to the minute in queries; this module takes and
returns aware datetimes (naive ones are taken as UTC), widens query windows to whole minutes and
cuts the answers to the exact window asked for.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from carriers import nhn_time
from carriers.base import Batch, Channel, Outcome, Recipient, SubmitOutcome, most_advanced
from carriers.errors import CarrierOutcomeUnknown, CarrierRejected
from carriers.nhn_alimtalk_codes import (
    ALL_RECIPIENTS_FAILED,
    DELIVERED_CODES,
    IDEMPOTENCY_KEY_REUSED,
    MESSAGE_CANCELLED,
    MESSAGE_FAILED,
    TEMPLATE_APPROVED,
    TEMPLATE_NOT_FOUND,
    TRANSIENT_API_CODES,
    UNCONFIRMED,
    api_message,
    result_message,
)
from carriers.nhn_http import answer, as_int, call
from carriers.nhn_time import CLOCK_SLACK, kst_minute, parse_kst, utc

#: Most recipients one send request may carry.
MAX_RECIPIENTS = 1000
#: Largest page the list and result-update APIs serve.
PAGE_SIZE = 1000
#: "The range of delivery request dates is up to 30 days" (less a minute for rounding).
MAX_QUERY_WINDOW = nhn_time.MAX_QUERY_WINDOW - timedelta(minutes=1)
#: Longest update window asked of the result-update API at once (its limit is unpublished; the
#: SMS API's equivalent allows one day).
MAX_UPDATE_WINDOW = timedelta(days=1)
#: Requests whose references are remembered for :meth:`NhnAlimtalkCarrier.report_pages`.
REFERENCE_CACHE_REQUESTS = 512

_VARIABLE = re.compile(r"#\{([^}]+)\}")


@dataclass(frozen=True, slots=True)
class KakaoTemplate:
    """An AlimTalk template as the provider holds it."""

    code: str
    name: str
    #: The body, with ``#{name}`` variables.
    content: str
    #: Variable names in order of first appearance in ``content``.
    variables: tuple[str, ...]
    #: Template status code (``TSC01`` requested ... ``TSC03`` approved, ``TSC04`` rejected).
    status: str

    @property
    def approved(self) -> bool:
        """Only an approved template can be sent."""
        return self.status == TEMPLATE_APPROVED


@dataclass(frozen=True, slots=True)
class ProviderFallback:
    """The guide's ``resendParameter``: the provider's own SMS/LMS fallback (see module docstring).

    Parameters:
      enabled: ``isResend``; ``False`` overrides a fallback configured in the console.
      resend_type: ``"SMS"`` or ``"LMS"`` (the provider picks by length when ``None``).
      send_no: sender number registered with the NHN SMS service.
      title: LMS title.
    """

    enabled: bool = False
    resend_type: str | None = None
    send_no: str | None = None
    title: str | None = None

    def as_parameter(self) -> dict[str, Any]:
        parameter: dict[str, Any] = {"isResend": self.enabled}
        for key, value in (
            ("resendType", self.resend_type),
            ("resendSendNo", self.send_no),
            ("resendTitle", self.title),
        ):
            if self.enabled and value is not None:
                parameter[key] = value
        return parameter


def template_variables(content: str) -> tuple[str, ...]:
    """The ``#{name}`` variables of ``content``, in order of first appearance."""
    return tuple(dict.fromkeys(_VARIABLE.findall(content)))


class NhnAlimtalkCarrier:
    """NHN Cloud AlimTalk (v2.3). Thread-safe: share one instance between threads.

    Parameters:
      base_url: API domain, e.g. ``https://kakaotalk-bizmessage.api.nhncloudservice.com``.
      app_key: the KakaoTalk Bizmessage appkey.
      secret_key: its secret key (``X-Secret-Key``).
      sender_key: the KakaoTalk channel's sender key (``senderKey``).
      timeout_seconds: longest wait for an answer, in seconds; past it the outcome is unknown.
      connect_timeout_seconds: longest wait to connect, in seconds (default: min(3, timeout)).
      max_connections: pooled keep-alive connections (one per concurrently sending thread).
      template_ttl_seconds: how long :meth:`template` answers are reused, in seconds.
      provider_fallback: ``resendParameter`` sent with every recipient; ``None`` sends none.
      transport: an ``httpx`` transport, for tests.
    """

    name = "nhn_alimtalk"

    def __init__(
        self,
        base_url: str,
        app_key: str,
        secret_key: str,
        sender_key: str,
        timeout_seconds: float,
        *,
        connect_timeout_seconds: float | None = None,
        max_connections: int = 32,
        template_ttl_seconds: float = 60.0,
        provider_fallback: ProviderFallback | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        connect = (
            connect_timeout_seconds if connect_timeout_seconds is not None else min(3.0, timeout_seconds)
        )
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/alimtalk/v2.3/appkeys/" + quote(app_key, safe=""),
            headers={"X-Secret-Key": secret_key, "Content-Type": "application/json;charset=UTF-8"},
            timeout=httpx.Timeout(timeout_seconds, connect=connect),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=5.0,
            ),
            transport=transport,
        )
        self.sender_key = sender_key
        self._fallback = provider_fallback.as_parameter() if provider_fallback is not None else None
        self._template_ttl = template_ttl_seconds
        self._templates: dict[str, tuple[float, KakaoTemplate]] = {}
        self._template_lists: dict[str, tuple[float, tuple[KakaoTemplate, ...]]] = {}
        self._references: OrderedDict[str, dict[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    # -- submit -----------------------------------------------------------------------------------

    def submit(self, batch: Batch) -> list[SubmitOutcome]:
        """Send ``batch`` in one request; see the module docstring for the errors raised."""
        recipients = batch.recipients
        if batch.channel is not Channel.KAKAO:
            raise ValueError(f"{self.name} sends only {Channel.KAKAO} batches, got {batch.channel}")
        if not recipients:
            return []
        if not batch.template_code:
            raise ValueError("a KakaoTalk batch needs a template_code")
        if len(recipients) > MAX_RECIPIENTS:
            raise ValueError(f"a batch holds at most {MAX_RECIPIENTS} recipients, got {len(recipients)}")
        names = batch.variables
        entries: list[dict[str, Any]] = []
        for recipient in recipients:
            if len(recipient.values) != len(names):
                raise ValueError(
                    f"recipient {recipient.reference} has {len(recipient.values)} values,"
                    f" expected {len(names)}"
                )
            entry: dict[str, Any] = {
                "recipientNo": recipient.phone,
                "recipientGroupingKey": recipient.reference,
            }
            if names:
                entry["templateParameter"] = dict(zip(names, recipient.values, strict=True))
            if self._fallback is not None:
                entry["resendParameter"] = self._fallback
            entries.append(entry)
        payload = {
            "senderKey": self.sender_key,
            "templateCode": batch.template_code,
            "recipientList": entries,
        }
        headers = {"X-NC-API-IDEMPOTENCY-KEY": batch.idempotency_key} if batch.idempotency_key else None
        answer = self._request("POST", "/messages", orjson.dumps(payload), None, headers, sending=True)
        return self._outcomes(answer.get("message") or {}, recipients)

    def _outcomes(self, message: dict[str, Any], recipients: Sequence[Recipient]) -> list[SubmitOutcome]:
        request_id = message.get("requestId")
        results = message.get("sendResults")
        if not isinstance(results, list):
            raise CarrierOutcomeUnknown("successful answer without sendResults")
        outcomes: list[SubmitOutcome] = []
        seen: dict[int, str] = {}
        for index, item in enumerate(results):
            reference = item.get("recipientGroupingKey")
            if reference is None and index < len(recipients):
                reference = recipients[index].reference
            if reference is None:
                continue
            seq = item.get("recipientSeq")
            code = as_int(item.get("resultCode"))
            message_text = str(item.get("resultMessage") or api_message(code))
            if code == 0:
                seen[as_int(seq)] = reference
                outcomes.append(
                    SubmitOutcome(reference, Outcome.ACCEPTED, "0", message_text, f"{request_id}:{seq}")
                )
            else:
                outcome = Outcome.RETRY if code in TRANSIENT_API_CODES else Outcome.FAILED
                outcomes.append(SubmitOutcome(reference, outcome, str(code), message_text))
        if request_id and seen:
            self._remember(str(request_id), seen)
        answered = {o.reference for o in outcomes}
        if any(r.reference not in answered for r in recipients):
            raise CarrierOutcomeUnknown("the answer left out some recipients", partial=outcomes)
        return outcomes

    # -- lookup and reports ---------------------------------------------------------------------

    def lookup(self, channel: Channel, references: Sequence[str], since: datetime) -> list[SubmitOutcome]:
        """What the provider knows of ``references`` requested at or after ``since``.

        One list query (of usually one page) per reference, by ``recipientGroupingKey``. Where
        the provider holds several messages for a reference, the most advanced one wins.
        """
        _check_channel(channel)
        start = utc(since) - CLOCK_SLACK
        end = min(datetime.now(UTC) + CLOCK_SLACK, start + MAX_QUERY_WINDOW)
        window = {"startRequestDate": kst_minute(start), "endRequestDate": kst_minute(end, ceil=True)}
        return most_advanced(
            _row_outcome(row, reference)
            for reference in dict.fromkeys(references)
            for row in self._list({**window, "recipientGroupingKey": reference})
            if row.get("recipientGroupingKey") == reference
        )

    def report_pages(
        self, channel: Channel, since: datetime, until: datetime
    ) -> Iterator[list[SubmitOutcome]]:
        """Final results whose receive date lies in ``[since, until)``, a page of the
        result-update API at a time.

        Asks the result-update API for whole minutes covering the window (a day at a time) and
        keeps the final rows whose ``receiveDate`` lies inside it; each request's references
        come from the list API by ``requestId`` (cached). Results updated after the poll of
        their window are not seen: poll windows that trail the present by a minute or more.
        """
        _check_channel(channel)
        since, until = utc(since), utc(until)
        start = since
        while start < until:
            end = min(until, start + MAX_UPDATE_WINDOW)
            params = {"startUpdateDate": kst_minute(start), "endUpdateDate": kst_minute(end, ceil=True)}
            for rows in self._pages("/message-results", params, ("messages",)):
                finals: list[SubmitOutcome] = []
                for row in rows:
                    result_at = parse_kst(row.get("receiveDate"))
                    # A row without a readable date is returned (result_at None) for the poller
                    # to set aside; any other outside the window is another poll's.
                    if result_at is None and not row.get("resultCode"):
                        continue
                    if result_at is not None and not start <= result_at < end:
                        continue
                    reference = self._reference(str(row.get("requestId")), as_int(row.get("recipientSeq")))
                    if reference is None:
                        continue
                    outcome = _row_outcome(row, reference)
                    if outcome.outcome in (Outcome.DELIVERED, Outcome.FAILED):
                        finals.append(outcome)
                yield finals
            start = end

    def _reference(self, request_id: str, seq: int) -> str | None:
        with self._lock:
            known = self._references.get(request_id)
            if known is not None:
                self._references.move_to_end(request_id)
        if known is None or seq not in known:
            known = {
                as_int(row.get("recipientSeq")): str(row["recipientGroupingKey"])
                for row in self._list({"requestId": request_id})
                if row.get("recipientGroupingKey") is not None
            }
            self._remember(request_id, known)
        return known.get(seq)

    def _remember(self, request_id: str, references: dict[int, str]) -> None:
        with self._lock:
            self._references[request_id] = references
            self._references.move_to_end(request_id)
            while len(self._references) > REFERENCE_CACHE_REQUESTS:
                self._references.popitem(last=False)

    def lookup_requests(self, channel: Channel, request_ids: Sequence[str]) -> list[SubmitOutcome]:
        """Every recipient of ``request_ids``: List Messages by ``requestId``, paged."""
        _check_channel(channel)
        rows = (row for rid in dict.fromkeys(request_ids) for row in self._list({"requestId": rid}))
        return most_advanced(
            _row_outcome(row, str(row["recipientGroupingKey"]))
            for row in rows
            if row.get("recipientGroupingKey")
        )

    def _list(self, params: dict[str, Any]) -> Iterable[dict[str, Any]]:
        pages = self._pages("/messages", params, ("messageSearchResultResponse", "messages"))
        return (row for rows in pages for row in rows)

    def _pages(
        self, path: str, params: dict[str, Any], where: tuple[str, ...]
    ) -> Iterator[list[dict[str, Any]]]:
        page = 1
        while True:
            answer: Any = self._query("GET", path, {**params, "pageNum": page, "pageSize": PAGE_SIZE})
            container = answer
            for key in where:
                container = (container or {}).get(key)
            rows = container if isinstance(container, list) else []
            yield rows
            total = (answer.get(where[0]) or {}).get("totalCount") if len(where) > 1 else None
            if len(rows) < PAGE_SIZE or (isinstance(total, int) and page * PAGE_SIZE >= total):
                return
            page += 1

    # -- templates ------------------------------------------------------------------------------

    def template(self, template_code: str) -> KakaoTemplate:
        """The template ``template_code`` of this sender key, reused for ``template_ttl_seconds``.

        Raises:
          CarrierRejected: ``template_not_found`` when the provider does not know the code.
        """
        now = time.monotonic()
        with self._lock:
            cached = self._templates.get(template_code)
        if cached is not None and cached[0] > now:
            return cached[1]
        path = f"/senders/{quote(self.sender_key, safe='')}/templates/{quote(template_code, safe='')}"
        try:
            answer = self._query("GET", path, None)
        except CarrierRejected as exc:
            if exc.code == str(TEMPLATE_NOT_FOUND):
                raise CarrierRejected("template_not_found", f"no template {template_code!r}") from exc
            raise
        data = answer.get("templates")
        if not isinstance(data, dict) or data.get("templateCode") != template_code:
            raise CarrierRejected("template_not_found", f"no template {template_code!r}")
        found = _template(data)
        with self._lock:
            self._templates[template_code] = (now + self._template_ttl, found)
        return found

    def templates(self, status: str | None = TEMPLATE_APPROVED) -> list[KakaoTemplate]:
        """Every template of this sender key in ``status`` (approved ones by default; None: every
        status), in the provider's order, read page by page and reused for
        ``template_ttl_seconds``. Each one is remembered for :meth:`template` too.

        Raises:
          CarrierRetryable: the provider could not be reached or asked us to wait.
          CarrierRejected: the provider refused (an unknown sender key ...).
        """
        key = f"list:{status or ''}"
        now = time.monotonic()
        with self._lock:
            cached = self._template_lists.get(key)
        if cached is not None and cached[0] > now:
            return list(cached[1])
        path = f"/senders/{quote(self.sender_key, safe='')}/templates"
        found: list[KakaoTemplate] = []
        page = 1
        while True:
            params: dict[str, Any] = {"pageNum": page, "pageSize": PAGE_SIZE}
            if status is not None:
                params["templateStatus"] = status
            listing = self._query("GET", path, params).get("templateListResponse") or {}
            rows = listing.get("templates") or []
            for data in rows:
                if isinstance(data, dict) and data.get("templateCode"):
                    found.append(_template(data))
            total = listing.get("totalCount")
            if len(rows) < PAGE_SIZE or (isinstance(total, int) and page * PAGE_SIZE >= total):
                break
            page += 1
        with self._lock:
            self._template_lists[key] = (now + self._template_ttl, tuple(found))
            for template in found:
                self._templates[template.code] = (now + self._template_ttl, template)
        return found

    # -- transport ------------------------------------------------------------------------------

    def close(self) -> None:
        """Release pooled connections."""
        self._client.close()

    def _query(self, method: str, path: str, params: dict[str, Any] | None) -> dict[str, Any]:
        """A call that sends no message: any transport failure is retryable."""
        return self._request(method, path, None, params, None, sending=False)

    def _request(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: dict[str, Any] | None,
        headers: dict[str, str] | None,
        *,
        sending: bool,
    ) -> dict[str, Any]:
        response = call(
            self._client,
            "NHN AlimTalk",
            method,
            path,
            content=content,
            params=params,
            headers=headers,
            sending=sending,
            carrier=self.name,
        )
        return answer(
            response,
            "NHN AlimTalk",
            sending=sending,
            api_message=api_message,
            transient_codes=TRANSIENT_API_CODES,
            on_refusal=_sending_refusal if sending else None,
        )

    def __enter__(self) -> NhnAlimtalkCarrier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _template(data: dict[str, Any]) -> KakaoTemplate:
    """A template as Get Template and List Templates show it."""
    content = str(data.get("templateContent") or "")
    return KakaoTemplate(
        code=str(data["templateCode"]),
        name=str(data.get("templateName") or ""),
        content=content,
        variables=template_variables(content),
        status=str(data.get("status") or ""),
    )


def _row_outcome(row: dict[str, Any], reference: str) -> SubmitOutcome:
    """One row of the list or result-update API as an outcome."""
    carrier_id = f"{row.get('requestId')}:{row.get('recipientSeq')}"
    status = str(row.get("messageStatus") or "")
    code = str(row.get("resultCode") or "")
    final = (code and code != UNCONFIRMED) or status in (MESSAGE_FAILED, MESSAGE_CANCELLED)
    if not final:
        name = "unconfirmed" if code == UNCONFIRMED else (status.lower() or "in flight")
        return SubmitOutcome(reference, Outcome.ACCEPTED, "0", name, carrier_id)
    result_at = parse_kst(row.get("receiveDate"))
    if code in DELIVERED_CODES:
        return SubmitOutcome(reference, Outcome.DELIVERED, code, result_message(code), carrier_id, result_at)
    if not code or code == UNCONFIRMED:
        code = f"messageStatus:{status}"
    message = str(row.get("resultCodeName") or result_message(code))
    return SubmitOutcome(reference, Outcome.FAILED, code, message, carrier_id, result_at)


def _check_channel(channel: Channel) -> None:
    if channel is not Channel.KAKAO:
        raise ValueError(f"nhn_alimtalk holds only {Channel.KAKAO} messages, got {channel}")


def _sending_refusal(code: int, message: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """AlimTalk's refusals of a send that are not plain refusals."""
    message_body = body.get("message")
    if (
        code == ALL_RECIPIENTS_FAILED
        and isinstance(message_body, dict)
        and isinstance(message_body.get("sendResults"), list)
    ):
        return body  # every recipient refused: per-recipient outcomes, not an exception
    if code == IDEMPOTENCY_KEY_REUSED:
        raise CarrierOutcomeUnknown(f"NHN AlimTalk: {code} {message}")
    return None
