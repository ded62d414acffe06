"""The send API (``POST .../sender/sms`` and ``.../sender/mms``) and template registration,
validated and answered as the provider documents them."""

from __future__ import annotations

from typing import Any

from carriers.nhn_sms_codes import api_message
from carriers.simulator.behaviour import FINAL, NEVER, REJECT, Behaviour, draw, never_reported
from carriers.simulator.state import DELIVERED, SendRequest, Store, Template

#: Longest texts the provider saves, in characters (api-guide "Caution" table).
SMS_BODY_MAX = 255
MMS_TITLE_MAX = 120
MMS_BODY_MAX = 4000
MAX_RECIPIENTS = 1000


class ProviderError(Exception):
    """A whole-request refusal, answered ``isSuccessful: false`` with a published code."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message or api_message(code)
        super().__init__(f"{code} {self.message}")


def header(code: int = 0, message: str = "SUCCESS") -> dict[str, Any]:
    return {"isSuccessful": code == 0, "resultCode": code, "resultMessage": message}


def send(store: Store, behaviour: Behaviour, channel: str, payload: Any, now: float) -> dict[str, Any]:
    """Accept what can be accepted of one send request; the answer's JSON body."""
    if not isinstance(payload, dict):
        raise ProviderError(-9997)
    template_id = payload.get("templateId") or None
    body, send_no, title = payload.get("body") or "", payload.get("sendNo") or "", payload.get("title")
    if template_id is not None:
        template = store.templates.get(template_id)
        if template is None:
            raise ProviderError(-2110)
        if template.send_type != ("1" if channel == "lms" else "0"):
            raise ProviderError(-2006)
        if not body:
            body, send_no, title = template.body, template.send_no, template.title
    _check_text(channel, body, title)
    if not send_no:
        raise ProviderError(-2312)
    recipients = payload.get("recipientList")
    if not isinstance(recipients, list) or not recipients:
        raise ProviderError(-2001)
    if len(recipients) > MAX_RECIPIENTS:
        raise ProviderError(-2016)

    request = SendRequest(
        request_id=store.new_request_id(now),
        channel=channel,
        send_no=send_no,
        body=body,
        title=title if channel == "lms" else None,
        template_id=template_id,
        accepted_at=now,
        result_at=now + behaviour.result_delay_ms / 1000.0,
    )
    known = store.by_reference[channel]
    resubmitted = store.resubmissions[channel]
    refusals = store.refusals[channel]
    reject_mix, failure_mix, seed = behaviour.reject_mix, behaviour.failure_mix, behaviour.seed
    references, numbers, seqs, params = request.references, request.numbers, request.seqs, request.params
    first_place = store.open_slot(request)
    finals: list[str] | None = [] if failure_mix or behaviour.no_report_rate else None
    request.finals = finals
    results: list[dict[str, Any]] = []
    append = results.append
    duplicates = rejected = 0
    for seq, recipient in enumerate(recipients, 1):
        reference = recipient.get("recipientGroupingKey")
        number = recipient.get("recipientNo") or recipient.get("internationalRecipientNo") or ""
        code = 0
        if reference is not None and reference in known:
            resubmitted[reference] = resubmitted.get(reference, 0) + 1
            duplicates += 1
        elif not number:
            code = -2018
        elif not number.isdigit() or not 8 <= len(number) <= 20:
            code = -2019
        else:
            if reject_mix:
                attempt = refusals.get(reference, 0) if reference is not None else 0
                refused = draw(
                    seed, f"{REJECT}:{attempt}", reference or f"{request.request_id}:{seq}", reject_mix
                )
                if refused is not None:
                    code = int(refused)
                    if reference is not None:
                        refusals[reference] = attempt + 1
            if code == 0:
                if reference is not None:
                    known[reference] = first_place + len(seqs)
                references.append(reference)
                numbers.append(number)
                seqs.append(seq)
                params.append(recipient.get("templateParameter"))
                if finals is not None:
                    finals.append(
                        NEVER
                        if never_reported(behaviour, reference or "")
                        else draw(seed, FINAL, reference or "", failure_mix) or DELIVERED
                    )
        # The parsed entry becomes the answer's entry: cheaper than building a new dict.
        if "templateParameter" in recipient:
            del recipient["templateParameter"]
        recipient["recipientNo"] = number
        recipient["recipientSeq"] = seq
        recipient["recipientGroupingKey"] = reference
        if code:
            rejected += 1
            recipient["resultCode"] = code
            recipient["resultMessage"] = api_message(code)
        else:
            recipient["resultCode"] = 0
            recipient["resultMessage"] = "SUCCESS"
        append(recipient)
    store.counters["duplicate_submissions"] += duplicates
    store.counters["rejected_recipients"] += rejected
    store.accept(request)
    return {
        "header": header(),
        "body": {
            "data": {
                "requestId": request.request_id,
                "statusCode": "2",
                "senderGroupingKey": payload.get("senderGroupingKey"),
                "sendResultList": results,
            }
        },
    }


def _check_text(channel: str, body: str, title: str | None) -> None:
    if not body or (channel == "lms" and not title):
        raise ProviderError(-2014)
    limit = MMS_BODY_MAX if channel == "lms" else SMS_BODY_MAX
    if len(body) > limit or (channel == "lms" and title is not None and len(title) > MMS_TITLE_MAX):
        raise ProviderError(-2015)
    try:
        body.encode("euc-kr")
        if title:
            title.encode("euc-kr")
    except UnicodeEncodeError:
        raise ProviderError(-2023) from None


def register_template(store: Store, behaviour: Behaviour, payload: Any, now: float) -> dict[str, Any]:
    """``POST .../templates``: checks in the order of the published template error codes."""
    if not isinstance(payload, dict):
        raise ProviderError(-9997)
    category_id = payload.get("categoryId")
    template_id = payload.get("templateId")
    send_type = str(payload.get("sendType") or "")
    title, body = payload.get("title"), payload.get("body")
    if category_id is None:
        raise ProviderError(-2108)
    if not any(c["categoryId"] == category_id for c in store.categories):
        raise ProviderError(-2206)
    if not template_id:
        raise ProviderError(-2100)
    if len(template_id) > 50:
        raise ProviderError(-2109)
    if template_id in store.templates:
        raise ProviderError(-2101)
    if not payload.get("templateName"):
        raise ProviderError(-2102)
    if not payload.get("sendNo"):
        raise ProviderError(-2103)
    if send_type not in ("0", "1"):
        raise ProviderError(-2104)
    if not body:
        raise ProviderError(-2105)
    if payload.get("useYn") not in ("Y", "N"):
        raise ProviderError(-2106)
    if send_type == "1" and not title:
        raise ProviderError(-2114)
    if title and len(title) > MMS_TITLE_MAX:
        raise ProviderError(-2115)
    if send_type == "0" and len(body) > SMS_BODY_MAX:
        raise ProviderError(-2116)
    if send_type == "1" and len(body) > MMS_BODY_MAX:
        raise ProviderError(-2117)
    if len(store.templates) >= behaviour.max_templates:
        raise ProviderError(-2112)
    store.templates[template_id] = Template(
        template_id,
        category_id,
        payload["templateName"],
        send_type,
        payload["sendNo"],
        title if send_type == "1" else None,
        body,
        now,
    )
    # The guide shows this answer with empty strings for code and message.
    return {"header": {"isSuccessful": True, "resultCode": "", "resultMessage": ""}}


def register_category(store: Store, payload: Any) -> dict[str, Any]:
    """``POST .../categories``."""
    if (
        not isinstance(payload, dict)
        or not payload.get("categoryName")
        or payload.get("useYn") not in ("Y", "N")
    ):
        raise ProviderError(-2200)
    category = {
        "categoryId": max(c["categoryId"] for c in store.categories) + 1,
        "categoryParentId": payload.get("categoryParentId") or 1,
        "depth": 1,
        "sort": 0,
        "categoryName": payload["categoryName"],
        "categoryDesc": payload.get("categoryDesc") or "",
        "useYn": payload["useYn"],
        "createUser": payload.get("createUser") or "",
    }
    store.categories.append(category)
    return {"header": header(), "body": {"data": category}}
