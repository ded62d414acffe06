"""The list API (``GET .../sender/sms|mms``) and single query (``GET .../sender/sms|mms/{id}``),
with the published filters, date formats (KST) and paging."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from carriers.nhn_sms_codes import MSG_STATUS_NAMES, result_message
from carriers.nhn_time import KST, PROVIDER_MAX_WINDOW
from carriers.simulator.sending import ProviderError, header
from carriers.simulator.state import DELIVERED, Message, Store

#: The list API refuses windows over a month (-4000).
MAX_WINDOW_SECONDS = PROVIDER_MAX_WINDOW.total_seconds()
MAX_PAGE_SIZE = 1000


def parse_date(text: str) -> float:
    """``yyyy-MM-dd HH:mm:ss`` (or ``HH:mm``) in KST as epoch seconds; -2000 when malformed."""
    for layout in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=KST).timestamp()
        except ValueError:
            continue
    raise ProviderError(-2000)


def format_date(epoch: float) -> str:
    """Epoch seconds as the provider writes dates: ``2018-08-10 10:06:42.123`` (KST)."""
    second = int(epoch)
    return _format_second(second) + f"{int((epoch - second) * 1000):03d}"


@lru_cache(maxsize=4096)
def _format_second(second: int) -> str:
    # A page of results shares a handful of distinct seconds; strftime is slow.
    return datetime.fromtimestamp(second, KST).strftime("%Y-%m-%d %H:%M:%S.")


def _window(params: Mapping[str, str], start_key: str, end_key: str) -> tuple[float, float] | None:
    start, end = params.get(start_key), params.get(end_key)
    if not start and not end:
        return None
    if not start or not end:
        raise ProviderError(-2011)
    low, high = parse_date(start), parse_date(end)
    if high - low > MAX_WINDOW_SECONDS:
        raise ProviderError(-4000)
    # Second precision, end included: a message at 10:00:00.7 is within "... 10:00:00".
    return low, high + 1.0


def row(message: Message, now: float, channel: str) -> dict[str, Any]:
    """One message as the list API shows it."""
    request = message.request
    final = message.is_final(now)
    code = message.final_code if final else ""
    data: dict[str, Any] = {
        "requestId": request.request_id,
        "requestDate": format_date(request.accepted_at),
        "resultDate": format_date(request.result_at) if final else None,
        "templateId": request.template_id,
        "body": message.text(),
        "sendNo": request.send_no,
        "countryCode": "82",
        "recipientNo": message.recipient_no,
        "msgStatus": "3" if final else "2",
        "msgStatusName": MSG_STATUS_NAMES["3" if final else "2"],
        "resultCode": code,
        "resultCodeName": result_message(code) if code else "",
        "telecomCode": 10001,
        "telecomCodeName": "SKT",
        "recipientSeq": message.seq,
        "sendType": "1" if channel == "lms" else "0",
        "messageType": "LMS" if channel == "lms" else "SMS",
        "messageCount": 1,
        "adYn": "N",
        "resultMessage": "",
        "recipientGroupingKey": message.reference,
    }
    if channel == "lms":
        data["title"] = request.title
    return data


#: Seconds a list query's matches are kept for its further pages.
LIST_CACHE_SECONDS = 10.0


def list_messages(store: Store, channel: str, params: Mapping[str, str]) -> dict[str, Any]:
    """The list API: filter, page, answer."""
    now = time.time()
    request_id = params.get("requestId")
    created = _window(params, "startCreateDate", "endCreateDate")
    requested = _window(params, "startRequestDate", "endRequestDate")
    if request_id is None and created is None and requested is None:
        raise ProviderError(-2011)
    results = _window(params, "startResultDate", "endResultDate")
    try:
        page = max(1, int(params.get("pageNum") or 1))
        size = min(MAX_PAGE_SIZE, max(1, int(params.get("pageSize") or 15)))
    except ValueError:
        raise ProviderError(-1005) from None

    # Paging through a large answer by result date (the report poller) asks the same query page
    # after page: its matches are kept briefly, as a provider's database would serve the pages
    # from one snapshot. A result window lies in the past, so later sends cannot change it.
    cacheable = results is not None and request_id is None and "recipientGroupingKey" not in params
    key = (channel, tuple(sorted((k, v) for k, v in params.items() if k not in ("pageNum", "pageSize"))))
    cached = store.list_cache.get(key) if cacheable else None
    if cached is not None and cached[0] > now:
        matched = cached[1]
    else:
        matched = _matching(store, channel, params, now, request_id, created, requested, results)
        if cacheable:
            store.list_cache = {key: (now + LIST_CACHE_SECONDS, matched)}
    chosen = matched[(page - 1) * size : page * size]
    return {
        "header": header(),
        "body": {
            "pageNum": page,
            "pageSize": size,
            "totalCount": len(matched),
            "data": [row(m, now, channel) for m in chosen],
        },
    }


def _matching(
    store: Store,
    channel: str,
    params: Mapping[str, str],
    now: float,
    request_id: str | None,
    created: tuple[float, float] | None,
    requested: tuple[float, float] | None,
    results: tuple[float, float] | None,
) -> list[Message]:
    candidates: Iterable[Message]
    reference = params.get("recipientGroupingKey")
    if reference is not None:
        found = store.by_reference[channel].get(reference)
        candidates = [store.at(found)] if found is not None else []
    elif request_id is not None:
        sent = store.requests.get(request_id)
        candidates = (
            [sent.message(i) for i in range(len(sent))]
            if sent is not None and sent.channel == channel
            else []
        )
    elif results is not None:
        candidates = store.finalised_between(*results)
    else:
        window = created or requested
        assert window is not None
        candidates = store.between(*window)

    # Registration and request date are the same here (no scheduled sending).
    window = created or requested
    status = params.get("msgStatus")
    code = params.get("resultCode")
    send_no, recipient_no = params.get("sendNo"), params.get("recipientNo")
    template_id = params.get("templateId")
    matched: list[Message] = []
    for message in candidates:
        sent_request = message.request
        if sent_request.channel != channel:
            continue
        if request_id is not None and sent_request.request_id != request_id:
            continue
        if window is not None and not window[0] <= sent_request.accepted_at < window[1]:
            continue
        final = message.is_final(now)
        if results is not None and not (final and results[0] <= sent_request.result_at < results[1]):
            continue
        if status is not None and status != ("3" if final else "2"):
            continue
        if code is not None and not _code_matches(code, message, final):
            continue
        if send_no is not None and sent_request.send_no != send_no:
            continue
        if recipient_no is not None and message.recipient_no != recipient_no:
            continue
        if template_id is not None and sent_request.template_id != template_id:
            continue
        matched.append(message)
    return matched


def _code_matches(code: str, message: Message, final: bool) -> bool:
    if not final:
        return False
    if code == "MTR1":
        return message.final_code == DELIVERED
    if code == "MTR2":
        return message.final_code != DELIVERED
    return message.final_code == code


def one_message(store: Store, channel: str, request_id: str, params: Mapping[str, str]) -> dict[str, Any]:
    """The single query: one recipient of one request."""
    sent = store.requests.get(request_id)
    if sent is None or sent.channel != channel:
        raise ProviderError(-2008)
    try:
        seq = int(params.get("recipientSeq") or "")
    except ValueError:
        raise ProviderError(-2012) from None
    if seq in sent.seqs:
        message = sent.message(sent.seqs.index(seq))
        return {"header": header(), "body": {"data": row(message, time.time(), channel)}}
    raise ProviderError(-2012)
