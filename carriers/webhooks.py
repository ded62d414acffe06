"""NHN Cloud Notification webhooks, as published: one envelope for every product.

``POST <our URL>`` with header ``X-Toast-Webhook-Signature`` (the signature entered in the
provider's webhook settings) and body ``{hooksId, webhookConfigId, productName, appKey, event,
hooks: [...]}``. Events balsong acts on:

- KakaoTalk Bizmessage ``MESSAGE_RESULT_UPDATE``: a message's result code changed; each hook
  carries ``recipientGroupingKey`` (our reference), ``resultCode`` and ``receiveDate``.
- SMS ``UNSUBSCRIBE``: a recipient opted out of advertising through the 080 service (kept for
  the opt-out list; the SMS service sends no delivery results by webhook, those are polled).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from carriers.base import Outcome, SubmitOutcome
from carriers.nhn_alimtalk_codes import DELIVERED_CODES
from carriers.nhn_time import parse_kst

MESSAGE_RESULT_UPDATE = "MESSAGE_RESULT_UPDATE"
UNSUBSCRIBE = "UNSUBSCRIBE"


class InvalidWebhook(ValueError):
    """The webhook body is not the published envelope."""


@dataclass(frozen=True, slots=True)
class Webhook:
    hooks_id: str
    event: str
    product: str
    hooks: list[dict[str, Any]]


def signature_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison; an empty expected signature accepts nothing."""
    return bool(expected) and given is not None and hmac.compare_digest(expected.encode(), given.encode())


def parse_envelope(body: Any) -> Webhook:
    if not isinstance(body, dict):
        raise InvalidWebhook("the body must be a JSON object")
    hooks_id, event, hooks = body.get("hooksId"), body.get("event"), body.get("hooks")
    if not isinstance(hooks_id, str) or not hooks_id:
        raise InvalidWebhook("hooksId is missing")
    if not isinstance(event, str) or not event:
        raise InvalidWebhook("event is missing")
    if not isinstance(hooks, list) or not all(isinstance(h, dict) for h in hooks):
        raise InvalidWebhook("hooks must be a list of objects")
    return Webhook(hooks_id, event, str(body.get("productName") or ""), hooks)


class BadHook(NamedTuple):
    """A hook that is not the published shape: the rest of its call is applied without it."""

    hook: Any
    reason: Literal["missing_field", "invalid_type", "invalid_date"]
    detail: str


def message_results(webhook: Webhook) -> tuple[list[SubmitOutcome], list[BadHook]]:
    """The final results a MESSAGE_RESULT_UPDATE webhook reports, and the hooks that are not of
    the published shape. A hook without a reference is not about a message of ours (ours all
    carry one): it is left out of both. Codes and references are checked further by the engine."""
    results: list[SubmitOutcome] = []
    bad: list[BadHook] = []
    for hook in webhook.hooks:
        reference, code = hook.get("recipientGroupingKey"), hook.get("resultCode")
        if reference is None or reference == "":
            continue
        if type(reference) is not str:
            bad.append(BadHook(hook, "invalid_type", "recipientGroupingKey is not a string"))
            continue
        if code is None or code == "":
            bad.append(BadHook(hook, "missing_field", "resultCode is missing"))
            continue
        if type(code) is int:
            code = str(code)
        if type(code) is not str:
            bad.append(BadHook(hook, "invalid_type", "resultCode is neither a string nor an integer"))
            continue
        try:
            result_at = _parse_date(hook.get("receiveDate"))
        except ValueError as exc:
            bad.append(BadHook(hook, "invalid_date", str(exc)))
            continue
        outcome = Outcome.DELIVERED if code in DELIVERED_CODES else Outcome.FAILED
        carrier_id = f"{hook.get('requestId')}:{hook.get('recipientSeq')}"
        results.append(SubmitOutcome(reference, outcome, code, f"result {code}", carrier_id, result_at))
    return results, bad


def _parse_date(text: Any) -> datetime | None:
    """A hook's ``receiveDate`` (KST) in UTC; None when absent. Raises ValueError for a date
    that is present but not a date, or not one that can be converted (year 0001 in KST is
    before the first UTC instant Python holds)."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise ValueError("receiveDate is not a string")
    moment = parse_kst(text)
    if moment is None:
        raise ValueError("receiveDate is not a date Python can hold")
    return moment
