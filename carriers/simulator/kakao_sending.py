"""The AlimTalk send API (``POST /alimtalk/v2.3/appkeys/{appkey}/messages``), validated and
answered as the guide documents it.

Whole-request refusals (``isSuccessful: false``): a reused ``X-NC-API-IDEMPOTENCY-KEY`` within 10
minutes (-1005), an unknown sender key (-2017), a missing field (-2001), an unknown template
(-3003), a template not approved (-3005), more than 1,000 recipients (-2005), and -1031 "All of
receivers are failed to send" when no recipient could be accepted (its ``sendResults`` still say
why). Per recipient: an invalid number (-5000), a ``templateParameter`` not filling every
template variable (-3049), a filled text over 1,300 characters (-2019).

Like the SMS simulator, it accepts a reference (``recipientGroupingKey``) only once: a
resubmission is answered as accepted, counted, and not sent again.
"""

from __future__ import annotations

from typing import Any

from carriers.nhn_alimtalk_codes import (
    ALL_RECIPIENTS_FAILED,
    DELIVERED,
    IDEMPOTENCY_KEY_REUSED,
    INVALID_RECIPIENT,
    TEMPLATE_NOT_APPROVED,
    TEMPLATE_NOT_FOUND,
    TEMPLATE_PARAMETER_MISMATCH,
    api_message,
)
from carriers.simulator.behaviour import FINAL, NEVER, Behaviour, draw, never_reported
from carriers.simulator.kakao_state import VARIABLE, KakaoRequest, KakaoState, KakaoTemplate
from carriers.simulator.sending import ProviderError
from carriers.simulator.state import Store

MAX_RECIPIENTS = 1000
#: "The content that is replaced by the template parameters can not exceed 1,300 characters."
MAX_CONTENT = 1300
#: "If a request is made with the same key for 10 minutes, the request will be failed."
IDEMPOTENCY_SECONDS = 600.0


def refusal(code: int, message: str | None = None) -> ProviderError:
    """A whole-request refusal with the AlimTalk guide's message."""
    return ProviderError(code, message or api_message(code))


def header(code: int = 0, message: str = "SUCCESS") -> dict[str, Any]:
    return {"resultCode": code, "resultMessage": message, "isSuccessful": code == 0}


def send(
    state: KakaoState,
    store: Store,
    behaviour: Behaviour,
    sender_key: str,
    payload: Any,
    idempotency_key: str | None,
    now: float,
    kakao_now: float,
) -> tuple[dict[str, Any], bool]:
    """Accept what can be accepted of one send request: the answer's JSON body, and whether it
    succeeded (``False``: answered ``isSuccessful: false`` with -1031)."""
    if not isinstance(payload, dict):
        raise refusal(-3002)
    if idempotency_key:
        expiry = state.idempotency_keys.get(idempotency_key)
        if expiry is not None and expiry > kakao_now:
            raise refusal(IDEMPOTENCY_KEY_REUSED)
    if not payload.get("senderKey"):
        raise refusal(-2001, "The 'senderKey' must not be blank.")
    if payload["senderKey"] != sender_key:
        raise refusal(-2017)
    template_code = payload.get("templateCode")
    if not template_code:
        raise refusal(-2001, "The 'templateCode' must not be blank.")
    template = state.templates.get(template_code)
    if template is None:
        raise refusal(TEMPLATE_NOT_FOUND)
    if not template.approved:
        raise refusal(TEMPLATE_NOT_APPROVED)
    recipients = payload.get("recipientList")
    if not isinstance(recipients, list) or not recipients:
        raise refusal(-2001, "The 'recipientList' must not be blank.")
    if len(recipients) > MAX_RECIPIENTS:
        raise refusal(-2005, f"The 'recipientList' must be less than or equal to {MAX_RECIPIENTS}.")

    request = KakaoRequest(
        request_id=state.new_request_id(now),
        sender_key=sender_key,
        template_code=template_code,
        content=template.content,
        sender_grouping_key=payload.get("senderGroupingKey"),
        accepted_at=now,
        result_at=now + behaviour.kakao_result_delay_ms / 1000.0,
    )
    variables = template.variables
    mix, seed = behaviour.kakao_failure_mix, behaviour.seed
    results: list[dict[str, Any]] = []
    duplicates = rejected = 0
    for seq, recipient in enumerate(recipients, 1):
        if not isinstance(recipient, dict):
            raise refusal(-3002)
        reference = recipient.get("recipientGroupingKey")
        number = str(recipient.get("recipientNo") or "")
        params = recipient.get("templateParameter") or {}
        code = 0
        if reference is not None and reference in state.by_reference:
            state.resubmissions[reference] = state.resubmissions.get(reference, 0) + 1
            duplicates += 1
        elif not number.isdigit() or not 8 <= len(number) <= 15:
            code = INVALID_RECIPIENT
        elif not isinstance(params, dict) or any(name not in params for name in variables):
            code = TEMPLATE_PARAMETER_MISMATCH
        elif len(_filled(template, params)) > MAX_CONTENT:
            code = -2019
        else:
            request.references.append(reference)
            request.numbers.append(number)
            request.seqs.append(seq)
            request.params.append(params)
            request.finals.append(
                NEVER
                if never_reported(behaviour, reference or "")
                else draw(seed, FINAL, reference or "", mix) or DELIVERED
            )
        if code:
            rejected += 1
        results.append(
            {
                "recipientSeq": seq,
                "recipientNo": number,
                "resultCode": code,
                "resultMessage": api_message(code) if code else "SUCCESS",
                "recipientGroupingKey": reference,
            }
        )
    store.counters["duplicate_submissions"] += duplicates
    store.counters["rejected_recipients"] += rejected
    accepted_any = len(request) > 0 or duplicates > 0
    if accepted_any:
        state.accept(request)
        store.accepted_count += len(request)
        store.by_channel["kakao"] = store.by_channel.get("kakao", 0) + len(request)
        store.counters["accepted_requests"] += 1
        if idempotency_key:
            state.idempotency_keys[idempotency_key] = kakao_now + IDEMPOTENCY_SECONDS
    code = 0 if accepted_any else ALL_RECIPIENTS_FAILED
    return (
        {
            "header": header(code, "SUCCESS" if accepted_any else api_message(code)),
            "message": {
                "requestId": request.request_id if accepted_any else None,
                "senderGroupingKey": payload.get("senderGroupingKey"),
                "sendResults": results,
            },
        },
        accepted_any,
    )


def _filled(template: KakaoTemplate, params: dict[str, Any]) -> str:
    return VARIABLE.sub(lambda m: str(params.get(m.group(1), "")), template.content)


def add_template(state: KakaoState, payload: Any, now: float) -> KakaoTemplate:
    """``POST /_simulator/kakao/templates``: ``templateCode``, ``templateName``,
    ``templateContent`` and optionally ``status`` (default ``TSC03``, approved)."""
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    code, content = payload.get("templateCode"), payload.get("templateContent")
    if not isinstance(code, str) or not code or len(code) > 20:
        raise ValueError("templateCode: 1 to 20 characters")
    if not isinstance(content, str) or not content or len(content) > MAX_CONTENT:
        raise ValueError("templateContent: 1 to 1300 characters")
    status = str(payload.get("status") or "TSC03")
    if status not in ("TSC01", "TSC02", "TSC03", "TSC04"):
        raise ValueError("status: one of TSC01, TSC02, TSC03, TSC04")
    template = KakaoTemplate(code, str(payload.get("templateName") or code), content, status, now)
    state.templates[code] = template
    return template
