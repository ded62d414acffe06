"""NHN Cloud Notification SMS API v3.0 (``api-sms.cloud.toast.com``) as a :class:`Carrier`.

Follows the published guide (``TOAST-DOCS/SMS`` ``en/api-guide.md``, ``en/error-code.md``):
``POST /sms/v3.0/appKeys/{appKey}/sender/sms`` for SMS, ``.../sender/mms`` with ``title`` for LMS,
``X-Secret-Key`` header, up to 1000 ``recipientList`` entries per request, our reference in each
entry's ``recipientGroupingKey`` (echoed in the answer and searchable in the list API).

Per-recipient variables. The send API fills values per recipient only through a registered
template: ``recipientList[].templateParameter`` is "Template parameter (with the input of
template ID)" and its keys are "Replacement key (##key##)"; templates are registered with
``POST /sms/v3.0/appKeys/{appKey}/templates`` ("Send Templates (requiring no body updates)":
"If request parameter body is empty, replace it with the body of the corresponding
templateId"). So a batch with variables costs one request: its body (``#{name}`` turned into
``##name##``) is registered once per distinct (channel, sender, title, body) and cached
(:mod:`carriers.nhn_sms_templates`), and the batch is sent with ``templateId`` and one
``templateParameter`` per recipient. Only if the provider's template limit is reached (-2112,
1000 templates per appkey) does the adapter fall back to rendering each recipient's text and
sending one request per group of identical texts. A batch without variables is always one
request with a literal ``body``.

Outcomes. Per recipient, ``resultCode == 0`` is ``ACCEPTED`` with ``carrier_id
"<requestId>:<recipientSeq>"``; -9999/-2021 are ``RETRY``; any other code is ``FAILED``. For
the whole request: connection refused, connect timeout, 408, 429 and 503 raise
:class:`CarrierRetryable`; a read/write timeout, a dropped connection, an unreadable answer or
another 5xx raise :class:`CarrierOutcomeUnknown`; ``header.isSuccessful == false`` raises
:class:`CarrierRetryable` for -9999/-2021 and :class:`CarrierRejected` otherwise.

Dates. The API's dates are ``yyyy-MM-dd HH:mm:ss`` Korean time (KST, UTC+9, no DST); this module
converts from and to aware datetimes (naive ones are taken as UTC) and returns UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from carriers.base import Batch, Channel, Outcome, Recipient, SubmitOutcome, most_advanced
from carriers.errors import CarrierError, CarrierOutcomeUnknown, CarrierRejected
from carriers.nhn_http import answer, as_int, call
from carriers.nhn_sms_codes import (
    DELIVERED_CODES,
    MSG_STATUS_COMPLETED,
    MSG_STATUS_PROCESSING,
    MSG_STATUS_REQUESTING,
    TEMPLATE_MISSING,
    TRANSIENT_API_CODES,
    TRANSIENT_RESULT_CODES,
    api_message,
    result_message,
)
from carriers.nhn_sms_templates import TemplateRegistry
from carriers.nhn_time import CLOCK_SLACK, MAX_QUERY_WINDOW, kst_second, parse_kst, utc

#: Most recipients one send request may carry.
MAX_RECIPIENTS = 1000
#: Largest page the list API serves.
PAGE_SIZE = 1000

_SEND_PATHS = {Channel.SMS: "/sender/sms", Channel.LMS: "/sender/mms"}


class NhnSmsCarrier:
    """NHN Cloud Notification SMS (v3.0). Thread-safe: share one instance between threads.

    Parameters:
      base_url: API domain, e.g. ``https://api-sms.cloud.toast.com``.
      app_key: the project's appkey.
      secret_key: the appkey's secret key (``X-Secret-Key``).
      timeout_seconds: longest wait for an answer, in seconds; past it the outcome is unknown.
      connect_timeout_seconds: longest wait to connect, in seconds (default: min(3, timeout)).
      max_connections: pooled keep-alive connections (one per concurrently sending thread).
      template_category_id: category for registered templates; found or created if ``None``.
      report_lookback_seconds: how far before ``since`` a message reported by :meth:`reports`
        may have been requested, in seconds (the list API filters by request date first).
      transport: an ``httpx`` transport, for tests.
    """

    name = "nhn_sms"

    def __init__(
        self,
        base_url: str,
        app_key: str,
        secret_key: str,
        timeout_seconds: float,
        *,
        connect_timeout_seconds: float | None = None,
        max_connections: int = 32,
        template_category_id: int | None = None,
        report_lookback_seconds: float = 3 * 86400,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        connect = (
            connect_timeout_seconds if connect_timeout_seconds is not None else min(3.0, timeout_seconds)
        )
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/sms/v3.0/appKeys/" + quote(app_key, safe=""),
            headers={"X-Secret-Key": secret_key, "Content-Type": "application/json;charset=UTF-8"},
            timeout=httpx.Timeout(timeout_seconds, connect=connect),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=5.0,
            ),
            transport=transport,
        )
        self._templates = TemplateRegistry(self._query, template_category_id)
        self._report_lookback = timedelta(seconds=report_lookback_seconds)

    # -- submit -----------------------------------------------------------------------------------

    def submit(self, batch: Batch) -> list[SubmitOutcome]:
        """Send ``batch``; see the module docstring for the requests made and errors raised."""
        recipients = batch.recipients
        if not recipients:
            return []
        if len(recipients) > MAX_RECIPIENTS:
            raise ValueError(f"a batch holds at most {MAX_RECIPIENTS} recipients, got {len(recipients)}")
        path = _SEND_PATHS[batch.channel]
        if not batch.variables:
            return self._send(path, self._literal_payload(batch, batch.body, recipients), recipients)
        width = len(batch.variables)
        for recipient in recipients:
            if len(recipient.values) != width:
                raise ValueError(
                    f"recipient {recipient.reference} has {len(recipient.values)} values, expected {width}"
                )
        for _ in range(2):
            key = self._templates.ensure(batch)
            if key is None:
                return self._submit_rendered(path, batch)
            try:
                return self._send(path, self._template_payload(batch, key), recipients)
            except CarrierRejected as exc:
                # Deleted in the console since we registered it: nothing was sent; register again.
                if exc.code not in {str(code) for code in TEMPLATE_MISSING}:
                    raise
                self._templates.forget(key)
        raise CarrierRejected("-2110", "template vanished twice after registration")

    def _literal_payload(self, batch: Batch, body: str, recipients: Sequence[Recipient]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "body": body,
            "sendNo": batch.sender,
            "recipientList": [
                {"recipientNo": r.phone, "recipientGroupingKey": r.reference} for r in recipients
            ],
        }
        if batch.channel is Channel.LMS:
            payload["title"] = batch.title or ""
        return payload

    def _template_payload(self, batch: Batch, key: str) -> dict[str, Any]:
        names = batch.variables
        return {
            "templateId": key,
            "sendNo": batch.sender,
            "recipientList": [
                {
                    "recipientNo": r.phone,
                    "recipientGroupingKey": r.reference,
                    "templateParameter": dict(zip(names, r.values, strict=True)),
                }
                for r in batch.recipients
            ],
        }

    def _submit_rendered(self, path: str, batch: Batch) -> list[SubmitOutcome]:
        """One request per group of recipients whose rendered text is identical."""
        placeholders = ["#{" + name + "}" for name in batch.variables]
        groups: dict[str, list[Recipient]] = {}
        for recipient in batch.recipients:
            text = batch.body
            for placeholder, value in zip(placeholders, recipient.values, strict=True):
                text = text.replace(placeholder, value)
            groups.setdefault(text, []).append(recipient)
        outcomes: list[SubmitOutcome] = []
        for text, members in groups.items():
            try:
                outcomes.extend(self._send(path, self._literal_payload(batch, text, members), members))
            except CarrierError as exc:
                exc.partial = outcomes
                raise
        return outcomes

    def _send(
        self, path: str, payload: dict[str, Any], recipients: Sequence[Recipient]
    ) -> list[SubmitOutcome]:
        answer = self._request("POST", path, orjson.dumps(payload), None, sending=True)
        data = (answer.get("body") or {}).get("data") or {}
        request_id = data.get("requestId")
        results = data.get("sendResultList")
        if not isinstance(results, list):
            raise CarrierOutcomeUnknown("successful answer without sendResultList")
        outcomes: list[SubmitOutcome] = []
        seen: set[str] = set()
        for index, item in enumerate(results):
            reference = item.get("recipientGroupingKey")
            if reference is None and index < len(recipients):
                reference = recipients[index].reference
            if reference is None:
                continue
            seen.add(reference)
            code = item.get("resultCode")
            message = item.get("resultMessage") or ""
            if code == 0 or code == "0":
                outcomes.append(
                    SubmitOutcome(
                        reference, Outcome.ACCEPTED, "0", message, f"{request_id}:{item.get('recipientSeq')}"
                    )
                )
            else:
                number = as_int(code)
                outcome = Outcome.RETRY if number in TRANSIENT_API_CODES else Outcome.FAILED
                outcomes.append(SubmitOutcome(reference, outcome, str(code), message or api_message(number)))
        if len(seen) < len(recipients) and any(r.reference not in seen for r in recipients):
            raise CarrierOutcomeUnknown("the answer left out some recipients", partial=outcomes)
        return outcomes

    # -- lookup and reports ---------------------------------------------------------------------

    def lookup(self, channel: Channel, references: Sequence[str], since: datetime) -> list[SubmitOutcome]:
        """What the provider knows of ``references`` requested at or after ``since``.

        The list API filters by one ``recipientGroupingKey`` at a time, so this makes one query
        (of usually one page) per reference. Where the provider holds several messages for a
        reference, the most advanced one wins (delivered, then accepted, then failed).
        """
        start = utc(since) - CLOCK_SLACK
        end = min(datetime.now(UTC) + CLOCK_SLACK, start + MAX_QUERY_WINDOW)
        window = {"startRequestDate": kst_second(start), "endRequestDate": kst_second(end)}
        rows = (
            row
            for reference in dict.fromkeys(references)
            for row in self._list(channel, {**window, "recipientGroupingKey": reference})
            if row.get("recipientGroupingKey") == reference
        )
        return most_advanced(_row_outcome(row) for row in rows)

    def lookup_requests(self, channel: Channel, request_ids: Sequence[str]) -> list[SubmitOutcome]:
        """Every recipient of ``request_ids``: the list API by ``requestId``, paged."""
        rows = (row for rid in dict.fromkeys(request_ids) for row in self._list(channel, {"requestId": rid}))
        return most_advanced(_row_outcome(row) for row in rows if row.get("recipientGroupingKey"))

    def report_pages(
        self, channel: Channel, since: datetime, until: datetime
    ) -> Iterator[list[SubmitOutcome]]:
        """Final results whose result date lies in ``[since, until)``, a page of the list API at
        a time (a passing failure such as "phone off" comes as ``RETRY``: the recipient should
        be sent again).

        Uses the list API's ``startResultDate``/``endResultDate`` (second precision, so the
        window is widened by a second and cut exactly here), inside a request-date window
        reaching ``report_lookback_seconds`` before ``since`` (the API requires one).
        """
        since, until = utc(since), utc(until)
        request_start = max(since - self._report_lookback, until + CLOCK_SLACK - MAX_QUERY_WINDOW)
        params = {
            "startRequestDate": kst_second(request_start),
            "endRequestDate": kst_second(until + CLOCK_SLACK),
            "startResultDate": kst_second(since),
            "endResultDate": kst_second(until + timedelta(seconds=1)),
        }
        for rows in self._pages(channel, params):
            finals: list[SubmitOutcome] = []
            for row in rows:
                outcome = _row_outcome(row)
                if outcome.outcome is Outcome.ACCEPTED:
                    continue
                # A final result without a readable date is returned as it is (result_at None):
                # the poller sets it aside rather than let it pass unseen.
                if outcome.result_at is None or since <= outcome.result_at < until:
                    finals.append(outcome)
            yield finals

    def _list(self, channel: Channel, params: dict[str, Any]) -> Iterable[dict[str, Any]]:
        return (row for rows in self._pages(channel, params) for row in rows)

    def _pages(self, channel: Channel, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        page = 1
        while True:
            answer = self._query(
                "GET", _SEND_PATHS[channel], None, {**params, "pageNum": page, "pageSize": PAGE_SIZE}
            )
            body = answer.get("body") or {}
            rows = body.get("data") or []
            yield rows
            total = body.get("totalCount")
            if len(rows) < PAGE_SIZE or (isinstance(total, int) and page * PAGE_SIZE >= total):
                return
            page += 1

    def close(self) -> None:
        """Release pooled connections."""
        self._client.close()

    # -- transport ------------------------------------------------------------------------------

    def _query(
        self, method: str, path: str, payload: dict[str, Any] | None, params: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A call that sends no message (query, template registration): any transport failure
        is retryable."""
        content = orjson.dumps(payload) if payload is not None else None
        return self._request(method, path, content, params, sending=False)

    def _request(
        self, method: str, path: str, content: bytes | None, params: dict[str, Any] | None, *, sending: bool
    ) -> dict[str, Any]:
        response = call(
            self._client,
            "NHN SMS",
            method,
            path,
            content=content,
            params=params,
            sending=sending,
            carrier=self.name,
        )
        return answer(
            response, "NHN SMS", sending=sending, api_message=api_message, transient_codes=TRANSIENT_API_CODES
        )

    def __enter__(self) -> NhnSmsCarrier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _row_outcome(row: dict[str, Any]) -> SubmitOutcome:
    """One row of the list API as an outcome."""
    reference = str(row.get("recipientGroupingKey") or "")
    carrier_id = f"{row.get('requestId')}:{row.get('recipientSeq')}"
    status = str(row.get("msgStatus") or "")
    code = str(row.get("resultCode") or "")
    if status in (MSG_STATUS_REQUESTING, MSG_STATUS_PROCESSING) or (
        status == MSG_STATUS_COMPLETED and not code
    ):
        return SubmitOutcome(
            reference, Outcome.ACCEPTED, "0", str(row.get("msgStatusName") or "processing"), carrier_id
        )
    result_at = parse_kst(row.get("resultDate"))
    if status == MSG_STATUS_COMPLETED and code in DELIVERED_CODES:
        return SubmitOutcome(reference, Outcome.DELIVERED, code, result_message(code), carrier_id, result_at)
    if not code:
        code = f"msgStatus:{status}"
    message = str(row.get("resultCodeName") or row.get("resultMessage") or result_message(code))
    outcome = Outcome.RETRY if code in TRANSIENT_RESULT_CODES else Outcome.FAILED
    return SubmitOutcome(reference, outcome, code, message, carrier_id, result_at)
