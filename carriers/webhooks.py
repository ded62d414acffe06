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
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from carriers.base import Outcome, SubmitOutcome

KST = ZoneInfo("Asia/Seoul")
MESSAGE_RESULT_UPDATE = "MESSAGE_RESULT_UPDATE"
UNSUBSCRIBE = "UNSUBSCRIBE"
#: Result codes of KakaoTalk Bizmessage that mean "delivered".
KAKAO_DELIVERED_CODES = frozenset({"1000", "MRC01"})


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


def message_results(webhook: Webhook) -> list[SubmitOutcome]:
    """The final results a MESSAGE_RESULT_UPDATE webhook reports (hooks without a result code
    or reference are skipped: nothing final to record)."""
    results = []
    for hook in webhook.hooks:
        reference, code = hook.get("recipientGroupingKey"), hook.get("resultCode")
        if not reference or not code:
            continue
        code = str(code)
        outcome = Outcome.DELIVERED if code in KAKAO_DELIVERED_CODES else Outcome.FAILED
        carrier_id = f"{hook.get('requestId')}:{hook.get('recipientSeq')}"
        results.append(
            SubmitOutcome(
                str(reference),
                outcome,
                code,
                f"result {code}",
                carrier_id,
                _parse_date(hook.get("receiveDate")),
            )
        )
    return results


def _parse_date(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=KST).astimezone(UTC)
        except ValueError:
            continue
    return None
