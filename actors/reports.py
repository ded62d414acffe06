"""Applying carrier reports that came by webhook: parse the call, hand it to the engine's one
way in for reports (`engine.lifecycle.reports`), whatever it holds."""

from __future__ import annotations

import logging

import dramatiq
import orjson

from actors.broker import REPORTS_QUEUE
from actors.publish import APPLY_WEBHOOK
from carriers.webhooks import (
    MESSAGE_RESULT_UPDATE,
    UNSUBSCRIBE,
    InvalidWebhook,
    message_results,
    parse_envelope,
)
from engine.lifecycle import dead_entries
from engine.lifecycle.dead_entries import DeadEntry
from engine.lifecycle.reports import ingest_opt_outs, ingest_reports
from engine.runtime import get_runtime

log = logging.getLogger(__name__)


@dramatiq.actor(
    actor_name=APPLY_WEBHOOK, queue_name=REPORTS_QUEUE, max_retries=20, min_backoff=1_000, max_backoff=60_000
)
def apply_webhook(carrier: str, body: str) -> None:
    """Record what a webhook call reports: final results (applied idempotently by the flusher)
    or 080 opt-outs. A malformed hook is set aside, the others are applied; only an error that
    may pass (Redis or PostgreSQL down) makes the call retry."""
    rt = get_runtime()
    try:
        webhook = parse_envelope(orjson.loads(body))
    except (orjson.JSONDecodeError, InvalidWebhook) as exc:
        # The API checked the envelope before queueing it; a message that is not one was not
        # queued by the API and will not become one by retrying.
        with rt.pool.connection() as conn:
            dead_entries.set_aside(
                conn, [DeadEntry("webhook", "invalid_envelope", dead_entries.error_text(exc), body, carrier)]
            )
        return
    if webhook.event == MESSAGE_RESULT_UPDATE:
        results, bad = message_results(webhook)
        malformed = [DeadEntry("webhook", b.reason, b.detail, b.hook, carrier) for b in bad]
        ingest_reports(rt, carrier, "webhook", results, malformed)
    elif webhook.event == UNSUBSCRIBE:
        ingest_opt_outs(rt, carrier, webhook.hooks)
    else:
        log.info("webhook event ignored", extra={"carrier": carrier, "event": webhook.event})
