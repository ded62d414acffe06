"""Logs as JSON lines, with phone numbers masked.

One object per line on stderr: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the
process id, and whatever the call passed in ``extra`` (``job_id``, ``batch_id``, ``duty`` ...), so
a log pipeline can filter one job's lines without parsing text. A line written while the API
answers a request carries its ``request_id`` (`REQUEST_ID`, set by `api.request_id`).

Code masks numbers where it logs them (`engine.intake.phone.mask_phone`); :class:`MaskPhones` is the
last line of defence, for a number that slips into a message, an exception or a carrier's error
text: anything that looks like a Korean phone number becomes ``010-****-5678``, whatever digits
it is written in (full-width ``０１０``, Arabic-Indic ...; Python's ``int`` and ``engine.intake.phone``
read them all, so a carrier or caller may send them).
"""

from __future__ import annotations

import logging
import logging.config
import re
import unicodedata
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    # uvicorn repeats its message with terminal colours.
    "color_message",
}

#: The id of the API request being answered (``X-Request-Id``), on every line logged meanwhile.
REQUEST_ID: ContextVar[str | None] = ContextVar("balsong_request_id", default=None)

# A Korean number in any usual writing: domestic (0...) or international (+82, 0082, 82, with or
# without "(0)"), mobile 01X, Seoul 02, area 0[3-6][1-5], internet 070, personal 050X; digits in
# groups separated by nothing, '-', '.', ' ' or ')'. Never inside a longer run of digits.
_PHONE = re.compile(
    r"(?<![\d*])"
    r"(?:(?:\+|00)?82[-. ]?(?:\(0\))?[-. ]?0?|0)"
    r"(1[016789]|2|[3-6][1-5]|70|50[2-8])"
    r"[-. )]{0,2}(\d{3,4})[-. ]?(\d{4})"
    r"(?!\d)"
)


#: Separators and signs a number may be written with besides ASCII ones: full-width forms,
#: dashes, the minus sign, the ideographic space.
_SEPARATORS = {
    ord("\uff0d"): "-",
    ord("\uff0e"): ".",
    ord("\uff09"): ")",
    ord("\uff08"): "(",
    ord("\uff0b"): "+",
    ord("\u3000"): " ",
    **{cp: "-" for cp in range(0x2010, 0x2016)},
    ord("\u2212"): "-",
}


#: Characters whose translation is remembered (Hangul and the like, met again and again).
_ASCII_CACHE_SIZE = 20_000


class _AsciiDigits(dict[int, int | str]):
    """A `str.translate` table writing every decimal digit (``\\d``) and :data:`_SEPARATORS` in
    ASCII, one character for one, so that a match's positions are the same in both texts."""

    def __missing__(self, code_point: int) -> int | str:
        digit = unicodedata.decimal(chr(code_point), None)
        value: int | str = code_point if digit is None else str(digit)
        if len(self) < _ASCII_CACHE_SIZE:  # bounded: log text may hold any character at all
            self[code_point] = value
        return value


_ASCII = _AsciiDigits(_SEPARATORS)


def mask_phones(text: str) -> str:
    """``text`` with every Korean phone number in it masked like ``010-****-5678``."""
    if text.isascii():
        return _PHONE.sub(_masked, text)
    # Matched in an ASCII-digit copy; the number's span of the original text is replaced.
    plain = text.translate(_ASCII)
    out: list[str] = []
    end = 0
    for match in _PHONE.finditer(plain):
        out += (text[end : match.start()], _masked(match))
        end = match.end()
    out.append(text[end:])
    return "".join(out)


def _masked(match: re.Match[str]) -> str:
    return f"0{match[1]}-{'*' * len(match[2])}-{match[3]}"


class MaskPhones(logging.Filter):
    """Masks phone numbers in a record's message, exception text and string extras."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_phones(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phones(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_phones(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, mask_phones(value))
        return True


class RequestContext(logging.Filter):
    """Puts the id of the request being answered (`REQUEST_ID`), if any, on a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return orjson.dumps(entry, default=str).decode()


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` configuration: every logger to one JSON handler on stderr.

    uvicorn's loggers are routed there too (uvicorn takes this as its ``log_config``).
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"mask_phones": {"()": MaskPhones}, "request_context": {"()": RequestContext}},
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["request_context", "mask_phones"],
                "formatter": "json",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            **{
                name: {"handlers": [], "propagate": True, "level": level.upper()}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "dramatiq")
            },
            # One line per carrier request at INFO is noise that costs throughput; failures still log.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            "pika": {"level": "WARNING"},
        },
    }


def configure_logging(level: str = "INFO") -> None:
    """Send this process's logs to stderr as JSON lines, phone numbers masked."""
    logging.config.dictConfig(logging_config(level))
