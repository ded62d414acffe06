"""Entries set aside: what one stage could not apply, kept so the rest of its batch goes on.

A report, webhook hook or result-stream entry that fails its checks at the door
(`engine.lifecycle.entry_checks`), or that still fails to apply once its batch has been retried entry by
entry, is written to ``dead_entries`` (stage, carrier, reason, error, the raw entry as text) and
counted in ``balsong_dead_entries_total{stage, reason}``; the ``BalsongEntriesSetAside`` alert
fires on it. Only what cannot apply comes here: an error that may pass (PostgreSQL or Redis
down) is raised, and the entry is tried again.

The raw entry is kept as JSON text with every control character escaped (``\\u0000``), so the
row that records a NUL byte cannot itself fail on it; it may hold a phone number, like the
recipient rows, and never reaches a log line or a metric label.

Imports: engine.lifecycle.entry_checks (reasons), metrics.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import orjson
from psycopg import Connection

from engine.lifecycle.entry_checks import CONTROL_CHARACTERS, Reason
from metrics import DEAD_ENTRIES

log = logging.getLogger(__name__)

#: The stages that apply batches of entries.
Stage = Literal["flusher", "webhook", "poll", "reconcile", "lookup"]
#: Longest raw entry kept, in characters (a stream entry holds up to 1000 outcomes).
MAX_ENTRY_CHARS: Final = 100_000
#: Longest error text kept.
MAX_ERROR_CHARS: Final = 1_000

_INSERT = """
    INSERT INTO dead_entries (stage, carrier, reason, error, entry)
    SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
"""


@dataclass(frozen=True, slots=True)
class DeadEntry:
    """One entry set aside."""

    stage: Stage
    reason: Reason
    #: What went wrong, for the operator (an exception's type and message).
    error: str
    #: The entry as it came (any JSON-like value, or the raw bytes of a stream entry).
    entry: Any
    #: The carrier it came from, where one is known.
    carrier: str | None = None


def entry_text(entry: Any) -> str:
    """``entry`` as JSON text safe for a PostgreSQL text column (no NUL byte)."""
    if isinstance(entry, bytes | bytearray | memoryview):
        text = bytes(entry).decode("utf-8", errors="backslashreplace")
    else:
        try:
            text = orjson.dumps(entry, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):
            text = repr(entry)
    if CONTROL_CHARACTERS.search(text):
        text = CONTROL_CHARACTERS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text[:MAX_ENTRY_CHARS]


def error_text(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return CONTROL_CHARACTERS.sub("?", text)[:MAX_ERROR_CHARS]


def store(conn: Connection, entries: Sequence[DeadEntry]) -> None:
    """Insert ``entries`` in the caller's transaction (count them once it commits: `count`)."""
    if not entries:
        return
    conn.execute(
        _INSERT,
        (
            [e.stage for e in entries],
            [e.carrier for e in entries],
            [e.reason for e in entries],
            [error_text(e.error) for e in entries],
            [entry_text(e.entry) for e in entries],
        ),
    )


def count(entries: Sequence[DeadEntry]) -> None:
    """Count and log entries whose rows are committed (by stage and reason only)."""
    tally = Counter((e.stage, e.reason) for e in entries)
    for (stage, reason), n in tally.items():
        DEAD_ENTRIES.labels(stage, reason).inc(n)
        log.warning(
            "%d entries set aside by %s: %s", n, stage, reason, extra={"stage": stage, "reason": reason}
        )


def set_aside(conn: Connection, entries: Sequence[DeadEntry]) -> None:
    """Store ``entries`` in a transaction of their own, then count them."""
    if not entries:
        return
    with conn.transaction():
        store(conn, entries)
    count(entries)


def purge(conn: Connection, before: datetime) -> int:
    """Delete entries set aside before ``before`` (they may hold phone numbers: they are kept
    no longer than results); how many went."""
    return conn.execute("DELETE FROM dead_entries WHERE created_at < %s", (before,)).rowcount
