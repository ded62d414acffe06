"""Which recipient a carrier report is about, and whether that carrier sent it.

A report changes a recipient only if the carrier that reports it is the one that sent it: a
report on the AlimTalk webhook naming an SMS recipient (or the other way round), or naming a
recipient that does not exist, changes nothing and is counted as unmatched, never retried. The
flusher enforces the same rule on every report it applies (`engine.lifecycle.flusher`); this module lets
the webhook applier tell such reports apart and count them before they reach the stream.

Imports: engine.lifecycle.results, metrics.labels (the carrier of each channel, defined there once).
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import Connection

from engine.lifecycle.entry_checks import Unmatched
from engine.lifecycle.results import RecipientOutcome
from metrics.labels import CARRIER_OF_CHANNEL

_CHANNELS = """
    SELECT u.i, r.channel
    FROM unnest(%s::bigint[], %s::int[]) WITH ORDINALITY AS u (job, seq, i)
    JOIN jobs j ON j.id = u.job
    JOIN recipients r ON r.job_id = u.job AND r.job_created_at = j.created_at AND r.seq = u.seq
"""


def channels_of(carrier: str) -> list[str]:
    """The channels ``carrier`` sends (empty for a name that is no carrier of ours)."""
    return sorted(channel for channel, name in CARRIER_OF_CHANNEL.items() if name == carrier)


def match_reports(
    conn: Connection, carrier: str, reports: Sequence[RecipientOutcome]
) -> tuple[list[RecipientOutcome], list[tuple[RecipientOutcome, Unmatched]]]:
    """(reports about a recipient ``carrier`` sent, the others with why) in one query."""
    if not reports:
        return [], []
    rows = conn.execute(_CHANNELS, ([r.job_id for r in reports], [r.seq for r in reports])).fetchall()
    channel_at = {int(i) - 1: channel for i, channel in rows}
    allowed = set(channels_of(carrier))
    matched: list[RecipientOutcome] = []
    unmatched: list[tuple[RecipientOutcome, Unmatched]] = []
    for index, report in enumerate(reports):
        channel = channel_at.get(index)
        if channel is None:
            unmatched.append((report, "unknown_reference"))
        elif channel not in allowed:
            unmatched.append((report, "wrong_channel"))
        else:
            matched.append(report)
    return matched, unmatched
