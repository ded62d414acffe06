"""Applying carrier reports that came by webhook."""

from __future__ import annotations

import logging

import dramatiq
import orjson

from actors.broker import REPORTS_QUEUE
from actors.publish import APPLY_WEBHOOK
from carriers.webhooks import MESSAGE_RESULT_UPDATE, UNSUBSCRIBE, message_results, parse_envelope
from engine.references import parse_reference
from engine.results import RecipientOutcome
from engine.runtime import get_runtime
from metrics import REPORTS_RECEIVED, REPORTS_UNKNOWN

log = logging.getLogger(__name__)


@dramatiq.actor(
    actor_name=APPLY_WEBHOOK, queue_name=REPORTS_QUEUE, max_retries=20, min_backoff=1_000, max_backoff=60_000
)
def apply_webhook(carrier: str, body: str) -> None:
    """Record the final results a webhook reports; the flusher applies them idempotently
    (a duplicate or out-of-order report changes nothing twice, states only move forward)."""
    webhook = parse_envelope(orjson.loads(body))
    if webhook.event == MESSAGE_RESULT_UPDATE:
        outcomes = []
        for result in message_results(webhook):
            parsed = parse_reference(result.reference)
            if parsed is None:
                REPORTS_UNKNOWN.labels(carrier).inc()
                log.warning("report for a reference that is not ours", extra={"carrier": carrier})
                continue
            outcomes.append(RecipientOutcome(parsed[0], parsed[1], result, parsed[2]))
        get_runtime().recorder.record_reports(outcomes)
        REPORTS_RECEIVED.labels(carrier, "webhook").inc(len(outcomes))
    elif webhook.event == UNSUBSCRIBE:
        # The opt-out list arrives with advertising compliance; until then, say so loudly.
        log.warning(
            "080 opt-out received but not stored yet", extra={"carrier": carrier, "hooks": len(webhook.hooks)}
        )
    else:
        log.info("webhook event ignored", extra={"carrier": carrier, "event": webhook.event})
