"""The AlimTalk query APIs: list messages (``GET .../messages``), get one message
(``GET .../messages/{requestId}/{recipientSeq}``), result updates (``GET .../message-results``)
and templates (``GET .../senders/{senderKey}/templates[/{templateCode}]``), with the published
filters, ``yyyy-MM-dd HH:mm`` KST windows (end minute included) and paging."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from carriers.nhn_alimtalk_codes import (
    DELIVERED,
    MESSAGE_COMPLETED,
    MESSAGE_FAILED,
    MESSAGE_READY,
    RESULT_FILTER_DELIVERED,
    RESULT_FILTER_FAILED,
    TEMPLATE_NOT_FOUND,
    TEMPLATE_STATUS_NAMES,
    result_message,
)
from carriers.nhn_time import KST, PROVIDER_MAX_WINDOW
from carriers.simulator.kakao_sending import header, refusal
from carriers.simulator.kakao_state import KakaoMessage, KakaoState, KakaoTemplate
from carriers.simulator.queries import format_date

#: "Search is possible within 31 days." (-4003)
MAX_WINDOW_SECONDS = PROVIDER_MAX_WINDOW.total_seconds()
MAX_PAGE_SIZE = 1000
PLUS_FRIEND_ID = "@balsong"


def parse_minute(text: str, code: int) -> tuple[float, float]:
    """``yyyy-MM-dd HH:mm`` (or with seconds) in KST: the epoch seconds it starts and the width
    it stands for (a minute, or a second)."""
    for layout, width in (("%Y-%m-%d %H:%M", 60.0), ("%Y-%m-%d %H:%M:%S", 1.0)):
        try:
            return datetime.strptime(text.strip(), layout).replace(tzinfo=KST).timestamp(), width
        except ValueError:
            continue
    raise refusal(code)


def _window(params: Mapping[str, str], start_key: str, end_key: str, code: int) -> tuple[float, float] | None:
    start, end = params.get(start_key), params.get(end_key)
    if not start and not end:
        return None
    if not start or not end:
        raise refusal(code)
    low, _ = parse_minute(start, code)
    high, width = parse_minute(end, code)
    if high - low > MAX_WINDOW_SECONDS:
        raise refusal(-4003)
    return low, high + width


def _paging(params: Mapping[str, str]) -> tuple[int, int]:
    try:
        page = max(1, int(params.get("pageNum") or 1))
        size = min(MAX_PAGE_SIZE, max(1, int(params.get("pageSize") or 15)))
    except ValueError:
        raise refusal(-4000) from None
    return page, size


def _status(message: KakaoMessage, kakao_now: float) -> tuple[str, str | None]:
    if not message.is_final(kakao_now):
        return MESSAGE_READY, None
    code = message.final_code
    return (MESSAGE_COMPLETED if code == DELIVERED else MESSAGE_FAILED), code


def row(message: KakaoMessage, kakao_now: float) -> dict[str, Any]:
    """One message as the list API shows it."""
    request = message.request
    status, code = _status(message, kakao_now)
    return {
        "requestId": request.request_id,
        "recipientSeq": message.seq,
        "plusFriendId": PLUS_FRIEND_ID,
        "senderKey": request.sender_key,
        "templateCode": request.template_code,
        "recipientNo": message.recipient_no,
        "content": message.text(),
        "requestDate": format_date(request.accepted_at),
        "createDate": format_date(request.accepted_at),
        "receiveDate": format_date(request.result_at) if code is not None else None,
        "resendStatus": "RSC01",
        "resendStatusName": "Not a target of resending",
        "messageStatus": status,
        "resultCode": code,
        "resultCodeName": result_message(code) if code is not None else None,
        "createUser": "",
        "senderGroupingKey": request.sender_grouping_key,
        "recipientGroupingKey": message.reference,
    }


def list_messages(state: KakaoState, params: Mapping[str, str], kakao_now: float) -> dict[str, Any]:
    """List Messages: one of ``requestId``, a request-date or a create-date window is required."""
    request_id = params.get("requestId")
    window = _window(params, "startRequestDate", "endRequestDate", -4103) or _window(
        params, "startCreateDate", "endCreateDate", -4103
    )
    if not request_id and window is None:
        raise refusal(-4103)
    page, size = _paging(params)
    candidates: Iterable[KakaoMessage]
    reference = params.get("recipientGroupingKey")
    if reference is not None:
        found = state.by_reference.get(reference)
        candidates = [KakaoMessage(*found)] if found is not None else []
    elif request_id:
        sent = state.requests.get(request_id)
        candidates = [KakaoMessage(sent, i) for i in range(len(sent))] if sent is not None else []
    else:
        assert window is not None
        candidates = state.accepted_between(*window)
    filters = {
        key: params.get(key)
        for key in ("recipientNo", "senderKey", "templateCode", "senderGroupingKey", "messageStatus")
    }
    result_filter = params.get("resultCode")
    matched: list[KakaoMessage] = []
    for message in candidates:
        request = message.request
        if request_id and request.request_id != request_id:
            continue
        if window is not None and not window[0] <= request.accepted_at < window[1]:
            continue
        status, code = _status(message, kakao_now)
        values = {
            "recipientNo": message.recipient_no,
            "senderKey": request.sender_key,
            "templateCode": request.template_code,
            "senderGroupingKey": request.sender_grouping_key,
            "messageStatus": status,
        }
        if any(wanted is not None and values[key] != wanted for key, wanted in filters.items()):
            continue
        if result_filter == RESULT_FILTER_DELIVERED and code != DELIVERED:
            continue
        if result_filter == RESULT_FILTER_FAILED and (code is None or code == DELIVERED):
            continue
        matched.append(message)
    chosen = matched[(page - 1) * size : page * size]
    return {
        "header": header(),
        "messageSearchResultResponse": {
            "messages": [row(m, kakao_now) for m in chosen],
            "totalCount": len(matched),
        },
    }


def one_message(state: KakaoState, request_id: str, seq_text: str, kakao_now: float) -> dict[str, Any]:
    """Get Message: one recipient of one request (-1016 when there is none)."""
    sent = state.requests.get(request_id)
    try:
        seq = int(seq_text)
    except ValueError:
        raise refusal(-1016) from None
    if sent is None or seq not in sent.seqs:
        raise refusal(-1016)
    return {"header": header(), "message": row(KakaoMessage(sent, sent.seqs.index(seq)), kakao_now)}


def message_results(state: KakaoState, params: Mapping[str, str], kakao_now: float) -> dict[str, Any]:
    """Query Updates of Message Result: messages whose result came in the update window (and
    has come by the Kakao clock), in result order; no total count, as published."""
    window = _window(params, "startUpdateDate", "endUpdateDate", -4000)
    if window is None:
        raise refusal(-4000)
    page, size = _paging(params)
    end = min(window[1], kakao_now)
    skip = (page - 1) * size
    rows: list[dict[str, Any]] = []
    for index, message in enumerate(state.finalised_between(window[0], end)):
        if index < skip:
            continue
        if len(rows) >= size:
            break
        item = row(message, kakao_now)
        rows.append({key: item[key] for key in _RESULT_FIELDS})
    return {"header": header(), "messages": rows}


_RESULT_FIELDS = (
    "requestId",
    "recipientSeq",
    "requestDate",
    "createDate",
    "receiveDate",
    "resendStatus",
    "resendStatusName",
    "messageStatus",
    "resultCode",
    "resultCodeName",
)


def template_body(template: KakaoTemplate, sender_key: str) -> dict[str, Any]:
    """A template as Get Template and List Templates show it."""
    stamp = format_date(template.created_at)
    return {
        "plusFriendId": PLUS_FRIEND_ID,
        "senderKey": sender_key,
        "plusFriendType": "NORMAL",
        "templateCode": template.code,
        "kakaoTemplateCode": template.code,
        "templateName": template.name,
        "templateMessageType": "BA",
        "templateEmphasizeType": "NONE",
        "templateContent": template.content,
        "buttons": [],
        "quickReplies": [],
        "comments": [],
        "status": template.status,
        "statusName": TEMPLATE_STATUS_NAMES.get(template.status, ""),
        "securityFlag": False,
        "categoryCode": "999999",
        "block": False,
        "dormant": False,
        "createDate": stamp,
        "updateDate": stamp,
    }


def get_template(state: KakaoState, sender_key: str, asked_sender: str, code: str) -> dict[str, Any]:
    if asked_sender != sender_key:
        raise refusal(-2017)
    template = state.templates.get(code)
    if template is None:
        raise refusal(TEMPLATE_NOT_FOUND)
    return {"header": header(), "templates": template_body(template, sender_key)}


def list_templates(
    state: KakaoState, sender_key: str, asked_sender: str, params: Mapping[str, str]
) -> dict[str, Any]:
    if asked_sender != sender_key:
        raise refusal(-2017)
    page, size = _paging(params)
    code, name, status = params.get("templateCode"), params.get("templateName"), params.get("templateStatus")
    matched = [
        t
        for t in state.templates.values()
        if (code is None or t.code == code)
        and (name is None or name in t.name)
        and (status is None or t.status == status)
    ]
    chosen = matched[(page - 1) * size : page * size]
    return {
        "header": header(),
        "templateListResponse": {
            "templates": [template_body(t, sender_key) for t in chosen],
            "totalCount": len(matched),
        },
    }
