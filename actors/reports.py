"""Applying carrier reports that came by webhook."""

from __future__ import annotations

import logging
from collections import Counter

import dramatiq
import orjson

from actors.broker import REPORTS_QUEUE
from actors.publish import APPLY_WEBHOOK
from carriers.webhooks import (
    MESSAGE_RESULT_UPDATE,
    UNSUBSCRIBE,
    InvalidWebhook,
    Webhook,
    message_results,
    parse_envelope,
)
from engine import dead_entries
from engine.dead_entries import DeadEntry
from engine.entry_checks import Refused, check_report
from engine.report_matching import match_reports
from engine.results import RecipientOutcome
from engine.runtime import get_runtime
from metrics import REPORTS_RECEIVED, REPORTS_UNMATCHED

log = logging.getLogger(__name__)


@dramatiq.actor(
    actor_name=APPLY_WEBHOOK, queue_name=REPORTS_QUEUE, max_retries=20, min_backoff=1_000, max_backoff=60_000
)
def apply_webhook(carrier: str, body: str) -> None:
    """Record the final results a webhook reports; the flusher applies them idempotently
    (a duplicate or out-of-order report changes nothing twice, states only move forward).

    Each hook is checked on its own: a malformed one is set aside (``dead_entries``), one about
    a recipient this carrier did not send is counted and dropped, and the others are recorded.
    Only an error that may pass (Redis or PostgreSQL down) makes the call retry."""
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
        _apply_results(carrier, webhook)
    elif webhook.event == UNSUBSCRIBE:
        # The opt-out list arrives with advertising compliance; until then, say so loudly.
        log.warning(
            "080 opt-out received but not stored yet", extra={"carrier": carrier, "hooks": len(webhook.hooks)}
        )
    else:
        log.info("webhook event ignored", extra={"carrier": carrier, "event": webhook.event})


def _apply_results(carrier: str, webhook: Webhook) -> None:
    rt = get_runtime()
    results, bad = message_results(webhook)
    dead = [DeadEntry("webhook", b.reason, b.detail, b.hook, carrier) for b in bad]
    checked: list[RecipientOutcome] = []
    not_ours = 0
    for result in results:
        try:
            report = check_report(result, date_required=False)
        except Refused as exc:
            dead.append(DeadEntry("webhook", exc.reason, str(exc), result._asdict(), carrier))
            continue
        if report is None:
            not_ours += 1
        else:
            checked.append(report)
    with rt.pool.connection() as conn:
        matched, unmatched = match_reports(conn, carrier, checked)
        rt.recorder.record_reports(matched, carrier=carrier)
        dead_entries.set_aside(conn, dead)
    REPORTS_RECEIVED.labels(carrier, "webhook").inc(len(matched))
    tally = Counter(why for _, why in unmatched)
    tally["unknown_reference"] += not_ours
    for why, count in tally.items():
        if count:
            REPORTS_UNMATCHED.labels(carrier, why).inc(count)
            log.warning(
                "%d reports name no recipient this carrier sent: %s", count, why, extra={"carrier": carrier}
            )
