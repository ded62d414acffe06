"""The flusher's door: result-stream entries checked before they join a flush pass.

An entry that is not JSON, not one of the two kinds the recorder writes, or holds a value
PostgreSQL cannot take (a NUL in a text, an int64 job id overflowing, a seq beyond int32) is set
aside here, alone: one outcome of a batch's entry, one report of a page. The checks are a few
type tests per outcome (the flusher carries ~30,000 outcomes a second); applying an entry that
passed them and still fails is handled by the flusher's entry-by-entry fallback.

Imports: engine.entry_checks, engine.dead_entries, engine.report_matching.
"""

from __future__ import annotations

from typing import Any

import orjson

from engine.dead_entries import DeadEntry
from engine.entry_checks import Refused, check_report_item, check_send_header, check_send_outcome
from engine.report_matching import channels_of

#: A stream entry as redis-py returns it: (id, {field: value}).
StreamEntry = tuple[bytes, dict[bytes, bytes]]


def _dead(reason: Refused, entry: Any, carrier: str | None = None) -> DeadEntry:
    return DeadEntry("flusher", reason.reason, str(reason), entry, carrier)


def admit(entries: list[StreamEntry]) -> tuple[list[dict[str, Any]], list[DeadEntry]]:
    """(the entries' payloads fit to apply, what was set aside). A payload keeps only its
    outcomes or reports that passed; one left with none is dropped."""
    payloads: list[dict[str, Any]] = []
    dead: list[DeadEntry] = []
    for _entry_id, fields in entries:
        raw = fields.get(b"d")
        try:
            payload: Any = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            dead.append(DeadEntry("flusher", "not_json", "stream entry is not JSON", raw))
            continue
        kind = payload.get("t") if type(payload) is dict else None
        if kind == "send":
            admitted = _admit_send(payload, dead)
        elif kind == "report":
            admitted = _admit_report(payload, dead)
        else:
            dead.append(
                DeadEntry("flusher", "invalid_type", "stream entry of an unknown kind", payload or raw)
            )
            continue
        if admitted is not None:
            payloads.append(admitted)
    return payloads, dead


def _admit_send(payload: dict[str, Any], dead: list[DeadEntry]) -> dict[str, Any] | None:
    try:
        check_send_header(payload)
    except Refused as exc:
        dead.append(_dead(exc, payload))
        return None
    outcomes = []
    for item in payload["o"]:
        try:
            outcomes.append(check_send_outcome(item))
        except Refused as exc:
            # The recipient stays queued and its batch unrecorded: reconciliation asks the
            # carrier about it, rather than it taking its batch's other outcomes down with it.
            dead.append(_dead(exc, {**payload, "o": [item]}))
    # A batch's last entry is kept even when every outcome was refused: it records the batch.
    return {**payload, "o": outcomes} if outcomes or payload["done"] else None


def _admit_report(payload: dict[str, Any], dead: list[DeadEntry]) -> dict[str, Any] | None:
    items, carrier = payload.get("r"), payload.get("c")
    if type(items) is not list:
        dead.append(_dead(Refused("invalid_type", "reports are not a list"), payload))
        return None
    if carrier is not None and (type(carrier) is not str or not channels_of(carrier)):
        dead.append(_dead(Refused("invalid_type", "reports of an unknown carrier"), payload))
        return None
    reports = []
    for item in items:
        try:
            reports.append(check_report_item(item))
        except Refused as exc:
            dead.append(_dead(exc, {"t": "report", "c": carrier, "r": [item]}, carrier))
    return {"t": "report", "c": carrier, "r": reports} if reports else None


def split(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """An entry as entries of one outcome or report each (to find which one fails)."""
    if payload["t"] == "send":
        outcomes = payload["o"]
        if len(outcomes) <= 1:
            return [payload]
        # Only the last part records the batch, once every outcome before it is in.
        last = len(outcomes) - 1
        return [{**payload, "o": [o], "done": payload["done"] and i == last} for i, o in enumerate(outcomes)]
    return [{**payload, "r": [item]} for item in payload["r"]]
