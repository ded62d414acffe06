"""The flusher's door: result-stream entries checked before they join a flush pass.

An entry that is not JSON, not one of the two kinds the recorder writes, or holds a value
PostgreSQL cannot take (a NUL in a text, an int64 job id overflowing, a seq beyond int32) is set
aside here, alone: one outcome of a batch's entry, one report of a page. The checks are a few
type tests per outcome (the flusher carries ~30,000 outcomes a second); applying an entry that
passed them and still fails is handled by the flusher's entry-by-entry fallback.

Imports: engine.lifecycle.entry_checks, engine.lifecycle.dead_entries, engine.lifecycle.report_matching.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from engine.dispatch.references import MAX_JOB_ID, MAX_SEQ
from engine.lifecycle.dead_entries import DeadEntry
from engine.lifecycle.entry_checks import (
    MAX_EPOCH,
    REASON_CODE_PATTERN,
    REPORT_STATUSES,
    SEND_STATUSES,
    Refused,
    check_report_item,
    check_send_header,
    check_send_outcome,
)
from engine.lifecycle.report_matching import channels_of

#: A control character as it appears in JSON text: escaped (``\u001f``, ``\b``, ``\f``; any
#: ``\u00XX`` to be safe) or raw (DEL, C1 in UTF-8). A false alarm only costs the slow path.
_RAW_CONTROL: Final = re.compile(rb"\\u00[0-9a-fA-F]{2}|\\[bf]|\x7f|\xc2[\x80-\x9f]|[\x00-\x1f]")

#: Bytes that are control characters on their own (C0 and DEL).
_CONTROL_BYTES: Final = bytes(range(0x20)) + b"\x7f"


def _no_control(raw: bytes) -> bool:
    """True if the JSON text ``raw`` holds no control character, raw or escaped. Most entries
    are told in two passes in C (no control byte, no backslash, no C1 lead byte); only the rest
    are searched with a regular expression."""
    if len(raw.translate(None, _CONTROL_BYTES)) != len(raw):
        return False
    if b"\\" not in raw and b"\xc2" not in raw:
        return True
    return _RAW_CONTROL.search(raw) is None


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
        # No control character anywhere in the entry (two passes in C): its outcomes need only
        # their types tested, and are admitted without a copy.
        clean = raw is not None and _no_control(raw)
        if kind == "send":
            admitted = _admit_send(payload, dead, clean)
        elif kind == "report":
            admitted = _admit_report(payload, dead, clean)
        else:
            dead.append(
                DeadEntry("flusher", "invalid_type", "stream entry of an unknown kind", payload or raw)
            )
            continue
        if admitted is not None:
            payloads.append(admitted)
    return payloads, dead


def _clean_sends(outcomes: Any) -> bool:
    """True if every outcome is well formed (the fast path: type tests only, no copy)."""
    for item in outcomes:
        if type(item) is not list or len(item) != 5:
            return False
        seq, status, code, text, carrier_id = item
        if type(seq) is not int or not 0 <= seq <= MAX_SEQ or status not in SEND_STATUSES:
            return False
        if code is not None and (type(code) is not str or REASON_CODE_PATTERN.fullmatch(code) is None):
            return False
        if (text is not None and type(text) is not str) or (
            carrier_id is not None and type(carrier_id) is not str
        ):
            return False
    return True


def _clean_reports(items: Any) -> bool:
    """True if every report is well formed (the fast path, as `_clean_sends`)."""
    for item in items:
        if type(item) is not list or len(item) != 7:
            return False
        job, seq, status, code, text, result_at, attempt = item
        if (
            type(job) is not int
            or not 0 < job <= MAX_JOB_ID
            or type(seq) is not int
            or not 0 <= seq <= MAX_SEQ
        ):
            return False
        if type(attempt) is not int or not 0 <= attempt <= MAX_SEQ or status not in REPORT_STATUSES:
            return False
        if code is not None and (type(code) is not str or REASON_CODE_PATTERN.fullmatch(code) is None):
            return False
        if text is not None and type(text) is not str:
            return False
        if result_at is not None and (type(result_at) is not float or not 0 <= result_at <= MAX_EPOCH):
            return False
    return True


def _admit_send(payload: dict[str, Any], dead: list[DeadEntry], clean: bool) -> dict[str, Any] | None:
    try:
        check_send_header(payload)
    except Refused as exc:
        dead.append(_dead(exc, payload))
        return None
    if clean and _clean_sends(payload["o"]):
        return payload
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


def _admit_report(payload: dict[str, Any], dead: list[DeadEntry], clean: bool) -> dict[str, Any] | None:
    items, carrier = payload.get("r"), payload.get("c")
    if type(items) is not list:
        dead.append(_dead(Refused("invalid_type", "reports are not a list"), payload))
        return None
    if carrier is not None and (type(carrier) is not str or not channels_of(carrier)):
        dead.append(_dead(Refused("invalid_type", "reports of an unknown carrier"), payload))
        return None
    # When its reports were first found to have come before their submissions (the flusher's
    # own field, `engine.lifecycle.flusher.EarlyReport`); anything but a time is ignored.
    since: Any = payload.get("e")
    if type(since) not in (int, float) or not 0 <= since <= MAX_EPOCH:
        since = None
    if clean and _clean_reports(items):
        return {"t": "report", "c": carrier, "r": items, "e": since} if items else None
    reports = []
    for item in items:
        try:
            reports.append(check_report_item(item))
        except Refused as exc:
            dead.append(_dead(exc, {"t": "report", "c": carrier, "r": [item]}, carrier))
    return {"t": "report", "c": carrier, "r": reports, "e": since} if reports else None


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
