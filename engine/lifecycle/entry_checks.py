"""Checks at the door of every stage that applies a batch of entries.

Reports come from outside (a webhook anyone holding the signature may send, a carrier's query
answer) and result-stream entries from Redis; each is checked here, cheaply, before it joins a
batch: types, ranges PostgreSQL can hold (int64 job ids, int32 seqs, timestamps of this era),
result codes of the providers' shape, and no NUL or other control character in any text. One
entry that fails is set aside (`engine.lifecycle.dead_entries`); the rest of its batch goes on.

What is checked and what is cleaned: identifiers (references, result codes, reason codes) are
refused when malformed, since no good value can be guessed for them; free text from a carrier
(its result message) is cleaned of control characters instead, so a delivered or failed result
is never lost for the way its message is written.

Imports: carriers/ (the outcome type), engine.dispatch.references, engine.lifecycle.results.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from carriers.base import Outcome, SubmitOutcome
from engine.dispatch.references import MAX_JOB_ID, MAX_SEQ, looks_like_ours, parse_reference
from engine.lifecycle.results import RETRY, RecipientOutcome
from engine.lifecycle.statuses import RecipientStatus

#: Why an entry was set aside: a bounded set (it is a metric label).
Reason = Literal[
    "not_json",
    "invalid_envelope",
    "invalid_type",
    "missing_field",
    "invalid_reference",
    "invalid_code",
    "invalid_date",
    "control_characters",
    "out_of_range",
    "apply_failed",
]
#: Why a well-formed report changed nothing: it names no recipient this carrier sent.
Unmatched = Literal["unknown_reference", "wrong_channel"]

#: A provider result code: ``1000``, ``-1001``, ``MRC01``, ``msgStatus:5`` (ASCII, short).
CODE_PATTERN: Final = re.compile(r"-?[A-Za-z0-9][A-Za-z0-9_.:\-]{0,39}")
#: One of our reason codes as stored (``carrier_<code>``, ``expired``, ``invalid_phone`` ...).
REASON_CODE_PATTERN: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,63}")
#: C0 and C1 control characters but tab, line feed and carriage return: PostgreSQL refuses NUL in
#: text, XML (the XLSX export) refuses the rest, and a terminal reading the logs obeys them.
CONTROL_CHARACTERS: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Longest carrier message kept; longer ones are cut (they are shown, never parsed).
MAX_TEXT_LENGTH: Final = 500
#: Earliest result time believed (before it, a date is garbage such as year 0001).
EARLIEST_RESULT: Final = datetime(2000, 1, 1, tzinfo=UTC)
#: How far in the future a result time may lie (clock skew between us and a carrier).
FUTURE_SLACK: Final = timedelta(days=1)
#: Epoch seconds PostgreSQL and Python both hold without overflow (years 1970 to 9999).
MAX_EPOCH: Final = 253_402_300_799.0

#: Statuses a submission outcome in the result stream may carry.
SEND_STATUSES: Final = frozenset(RecipientStatus)
#: Statuses a report in the result stream may carry.
REPORT_STATUSES: Final = frozenset({RecipientStatus.DELIVERED, RecipientStatus.FAILED, RETRY})


class Refused(ValueError):
    """An entry failed a check at the door; ``reason`` says which (a metric label)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason: Reason = reason


def clean_text(text: str, limit: int = MAX_TEXT_LENGTH) -> str:
    """``text`` without control characters, at most ``limit`` characters long."""
    if CONTROL_CHARACTERS.search(text):
        text = CONTROL_CHARACTERS.sub("", text)
    return text[:limit]


def check_code(code: object) -> str:
    """A provider result code as text; raises `Refused` unless it is an int or a short ASCII
    code (never a dict stored as ``carrier_{'x': 1}``, never NUL)."""
    if type(code) is int:
        code = str(code)
    if type(code) is not str:
        raise Refused("invalid_type", f"result code of type {type(code).__name__}")
    if CONTROL_CHARACTERS.search(code):
        raise Refused("control_characters", "control character in a result code")
    if not CODE_PATTERN.fullmatch(code):
        raise Refused("invalid_code", "result code of an unknown shape")
    return code


def check_result_at(moment: datetime | None, *, required: bool) -> datetime | None:
    """A report's result time, if it is one of this era (not before 2000, not a day ahead)."""
    if moment is None:
        if required:
            raise Refused("invalid_date", "result time missing or unreadable")
        return None
    if not EARLIEST_RESULT <= moment <= datetime.now(UTC) + FUTURE_SLACK:
        raise Refused("invalid_date", "result time out of range")
    return moment


def check_report(outcome: SubmitOutcome, *, date_required: bool) -> RecipientOutcome | None:
    """The recipient a carrier report is about, with its fields checked and its message cleaned;
    None when the reference is not one of ours at all (someone else's message: ignored).
    Raises `Refused` for a report that names a reference of our shape it cannot hold, a
    malformed code or date, or an outcome that is not final."""
    parsed = parse_reference(outcome.reference)
    if parsed is None:
        if looks_like_ours(outcome.reference):
            raise Refused("invalid_reference", "reference of our shape out of range")
        return None
    if outcome.outcome not in (Outcome.DELIVERED, Outcome.FAILED, Outcome.RETRY):
        raise Refused("invalid_type", "a report that is not a final result")
    code = check_code(outcome.code)
    message = clean_text(outcome.message if type(outcome.message) is str else "")
    carrier_id = outcome.carrier_id if type(outcome.carrier_id) is str else None
    if carrier_id is not None:
        carrier_id = clean_text(carrier_id, 100)
    check_result_at(outcome.result_at, required=date_required)
    # Nearly every report passes unchanged (the checks return the very objects they were
    # given): it is kept as it is, not copied (a poll checks tens of thousands a second).
    if code is not outcome.code or message is not outcome.message or carrier_id is not outcome.carrier_id:
        outcome = outcome._replace(code=code, message=message, carrier_id=carrier_id)
    return RecipientOutcome(parsed[0], parsed[1], outcome, parsed[2])


# -- result-stream entries (the flusher's door) ---------------------------------------------------


def _int_in(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _epoch(value: Any) -> bool:
    return type(value) in (int, float) and 0 <= value <= MAX_EPOCH and not math.isnan(value)


def _reason_code(value: Any) -> bool:
    return value is None or (type(value) is str and REASON_CODE_PATTERN.fullmatch(value) is not None)


def _text(value: Any) -> Any:
    """None, or the text cleaned; anything else is returned as is, to be refused."""
    if type(value) is str:
        return clean_text(value)
    return value


def check_send_header(entry: Any) -> None:
    """A submission entry's batch fields; raises `Refused`."""
    if type(entry) is not dict:
        raise Refused("invalid_type", "entry is not an object")
    for name in ("job", "ca", "batch", "done", "at", "o"):
        if name not in entry:
            raise Refused("missing_field", f"entry without {name!r}")
    if not _int_in(entry["job"], 1, MAX_JOB_ID) or not _int_in(entry["batch"], 0, MAX_SEQ):
        raise Refused("out_of_range", "job or batch out of range")
    if not _epoch(entry["ca"]) or not _epoch(entry["at"]):
        raise Refused("invalid_date", "timestamp out of range")
    if type(entry["done"]) is not bool or type(entry["o"]) is not list:
        raise Refused("invalid_type", "done or outcomes of the wrong type")


def check_send_outcome(item: Any) -> list[Any]:
    """One (seq, status, code, text, carrier id) of a submission entry, texts cleaned."""
    if type(item) is not list or len(item) != 5:
        raise Refused("invalid_type", "outcome is not a 5-item list")
    seq, status, code, text, carrier_id = item
    if not _int_in(seq, 0, MAX_SEQ):
        raise Refused("out_of_range", "seq out of range")
    if status not in SEND_STATUSES:
        raise Refused("invalid_type", "unknown status")
    if not _reason_code(code):
        raise Refused("invalid_code", "reason code of an unknown shape")
    text, carrier_id = _text(text), _text(carrier_id)
    if not (text is None or type(text) is str) or not (carrier_id is None or type(carrier_id) is str):
        raise Refused("invalid_type", "text or carrier id of the wrong type")
    return [seq, status, code, text, carrier_id]


def check_report_item(item: Any) -> list[Any]:
    """One (job, seq, status, code, text, result time, attempt) of a report entry."""
    if type(item) is not list or len(item) not in (6, 7):
        raise Refused("invalid_type", "report is not a 6- or 7-item list")
    job, seq, status, code, text, result_at, *rest = item
    attempt = rest[0] if rest else 0
    if not _int_in(job, 1, MAX_JOB_ID) or not _int_in(seq, 0, MAX_SEQ) or not _int_in(attempt, 0, MAX_SEQ):
        raise Refused("out_of_range", "job, seq or attempt out of range")
    if status not in REPORT_STATUSES:
        raise Refused("invalid_type", "unknown report status")
    if not _reason_code(code):
        raise Refused("invalid_code", "reason code of an unknown shape")
    text = _text(text)
    if not (text is None or type(text) is str):
        raise Refused("invalid_type", "text of the wrong type")
    if result_at is not None and not _epoch(result_at):
        raise Refused("invalid_date", "result time out of range")
    return [job, seq, status, code, text, result_at, attempt]
