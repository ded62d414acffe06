"""Carrier reports, however they came (a webhook call, a poll of the result API, or a lookup by
reference at the report deadline): one way in.

Each report is checked on its own (`engine.lifecycle.entry_checks`): a malformed one is set aside
(`engine.lifecycle.dead_entries`), one naming no recipient of ours or a recipient another carrier sent is
counted and dropped (`engine.lifecycle.report_matching`), and the rest go to the result stream, where the
flusher applies them by the lifecycle's transition table (a duplicate or late report changes
nothing; states only move forward). Only an error that may pass (Redis or PostgreSQL down)
escapes, so the caller retries.

The 080 opt-outs a carrier's webhook reports go onto the opt-out list of the tenant whose
advertising carried that 080 number (`engine.accounts.opt_outs.add_from_080`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from carriers.base import Outcome, SubmitOutcome
from engine.accounts import opt_outs
from engine.lifecycle import dead_entries
from engine.lifecycle.dead_entries import DeadEntry
from engine.lifecycle.entry_checks import Refused, check_report
from engine.lifecycle.report_matching import match_reports
from engine.lifecycle.results import RecipientOutcome
from engine.runtime import Runtime
from metrics import REPORTS_RECEIVED, REPORTS_UNMATCHED

log = logging.getLogger(__name__)

#: How reports came: a webhook call, a poll of the result API, or a lookup by reference of
#: recipients past their report deadline (`engine.lifecycle.report_deadline`).
Source = Literal["webhook", "poll", "lookup"]


@dataclass(slots=True)
class Ingested:
    """What became of one call's (or one poll page's) reports."""

    #: Recorded for the flusher.
    recorded: int = 0
    #: Set aside as malformed.
    set_aside: int = 0
    #: Dropped, by why: ``unknown_reference``, or the matcher's reasons.
    unmatched: Counter[str] = field(default_factory=Counter)


def ingest_reports(
    rt: Runtime,
    carrier: str,
    source: Source,
    reports: Iterable[SubmitOutcome],
    malformed: Sequence[DeadEntry] = (),
) -> Ingested:
    """Record the final results among ``reports`` from ``carrier``; ``malformed`` are entries
    the carrier's own parsing already refused (set aside with the rest)."""
    dead = list(malformed)
    checked: list[RecipientOutcome] = []
    result = Ingested()
    for report in reports:
        if report.outcome is Outcome.ACCEPTED:
            continue  # not final yet: a later report says how it ended
        try:
            # A poll pages by result time, so its results must carry one; a webhook's may not.
            found = check_report(report, date_required=source == "poll")
        except Refused as exc:
            dead.append(DeadEntry(source, exc.reason, str(exc), report._asdict(), carrier))
            continue
        if found is None:
            result.unmatched["unknown_reference"] += 1
        else:
            checked.append(found)
    if source == "webhook":
        # Anyone holding the signature can post a webhook: tell apart (and count) reports about
        # recipients this carrier did not send. A poll reads the carrier's own result API,
        # thousands of results a second: it skips the lookup, and the flusher, which applies
        # every report only to recipients of its carrier's channels, drops any such one alike.
        with rt.pool.connection() as conn:
            checked, unmatched = match_reports(conn, carrier, checked)
        result.unmatched.update(why for _, why in unmatched)
    rt.recorder.record_reports(checked, carrier=carrier)
    if dead:
        with rt.pool.connection() as conn:
            dead_entries.set_aside(conn, dead)
    result.recorded, result.set_aside = len(checked), len(dead)
    REPORTS_RECEIVED.labels(carrier, source).inc(result.recorded)
    for why, count in result.unmatched.items():
        REPORTS_UNMATCHED.labels(carrier, why).inc(count)
        log.warning(
            "%d reports name no recipient this carrier sent: %s", count, why, extra={"carrier": carrier}
        )
    return result


def ingest_opt_outs(rt: Runtime, carrier: str, hooks: Sequence[Any]) -> int:
    """Store the 080 opt-outs of an ``UNSUBSCRIBE`` webhook; returns how many numbers were
    added. A hook without both numbers as text is set aside."""
    by_line: dict[str, list[str]] = {}
    dead: list[DeadEntry] = []
    for hook in hooks:
        phone = hook.get("recipientNo") if isinstance(hook, dict) else None
        line = hook.get("unsubscribeNo") if isinstance(hook, dict) else None
        if not isinstance(phone, str) or not isinstance(line, str) or not line.isascii():
            dead.append(
                DeadEntry(
                    "webhook", "invalid_type", "recipientNo and unsubscribeNo must be text", hook, carrier
                )
            )
            continue
        by_line.setdefault(line, []).append(phone)
    added = 0
    with rt.pool.connection() as conn:
        for line, phones in by_line.items():
            added += opt_outs.add_from_080(conn, line, phones)
        if dead:
            dead_entries.set_aside(conn, dead)
    log.info("080 opt-outs stored", extra={"carrier": carrier, "added": added, "hooks": len(hooks)})
    return added
