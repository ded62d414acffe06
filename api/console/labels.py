"""Korean labels the console shows for balsong's codes, and the display formats of values."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from engine.clock import KST
from engine.intake.phone import InvalidPhone, format_phone
from engine.lifecycle.statuses import JOB_STATUS_LABELS, RECIPIENT_STATUS_LABELS
from engine.reporting.job_list_export import CHANNEL_LABELS, KIND_LABELS, ORIGIN_LABELS

JOB_STATUS = JOB_STATUS_LABELS
RECIPIENT_STATUS = RECIPIENT_STATUS_LABELS
CHANNEL = CHANNEL_LABELS
KIND = KIND_LABELS

LABELS = {"job_status": JOB_STATUS, "recipient_status": RECIPIENT_STATUS, "channel": CHANNEL, "kind": KIND}


def label(value: str | None, kind: str) -> str:
    """The Korean label of a code; an unknown code shows as itself rather than disappearing."""
    if value is None:
        return ""
    return LABELS[kind].get(value, value)


def when(iso: str | None) -> str:
    """``2026-11-23 14:05:09`` (KST) from the API's ISO 8601 text; empty for no time."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")


def number(value: int | None) -> str:
    return f"{value or 0:,}"


def progress_percent(counts: dict[str, int]) -> int:
    """Share of the job's recipients with a final result, in whole percent (100 only when all are)."""
    total = counts.get("total", 0)
    if total <= 0:
        return 0
    done = counts.get("delivered", 0) + counts.get("failed", 0) + counts.get("expired", 0)
    done += counts.get("cancelled", 0) + counts.get("unknown", 0)
    if done >= total:
        return 100
    return min(99, done * 100 // total)


def sender_number(number: str) -> str:
    """A sender number written the way Koreans write it (``02-1234-5678``); senders are not masked."""
    try:
        return format_phone(number)
    except InvalidPhone:
        return number


#: The scopes of API keys, as the console names them when a key lacks one.
SCOPE = {
    "read": "조회(read)",
    "send": "발송(send)",
    "export:unmasked": "전체 번호 내보내기(export:unmasked)",
    "admin": "관리(admin)",
}


def points(value: Decimal | str | None, signed: bool = False) -> str:
    """Points as Korean operators read money: ``12,345.50 P``; ``signed``: ``+45.00 P``, ``-90.00 P``."""
    amount = Decimal(value or 0).quantize(Decimal("0.01"))
    sign = "+" if signed and amount > 0 else ""
    return f"{sign}{amount:,.2f} P"


#: Why a phone number was refused, by `engine.intake.phone.InvalidPhone` code, in Korean.
PHONE_REFUSAL = {
    "empty": "번호가 비어 있습니다",
    "invalid_character": "숫자가 아닌 문자가 있습니다",
    "not_korean": "국내 번호가 아닙니다",
    "unknown_prefix": "알 수 없는 국번입니다 (맨 앞의 0이 빠졌을 수 있습니다)",
    "too_short": "자릿수가 모자랍니다",
    "too_long": "자릿수가 너무 많습니다",
    "sender_only": "대표번호(15xx·16xx·18xx)는 수신할 수 없습니다",
}


def phone_refusal(code: str, reason: str) -> str:
    """The Korean reason of a refused number; an unknown code shows the engine's own reason."""
    return PHONE_REFUSAL.get(code, reason)


#: Where an operator fixes what a failure's reason asks to fix (`engine.reason_codes.Advice.fix`).
FIX_LINKS = {"sender": ("/console/senders", "발신번호 관리"), "money": ("/console/money", "충전하기")}

LABELS["origin"] = ORIGIN_LABELS


def day(iso: str | None) -> str:
    """``2027-12-01`` (KST) from ISO 8601 text; empty for no time."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(KST).strftime("%Y-%m-%d")


def period(days: int) -> str:
    """A retention period as operators say it: ``1년`` for 365 days, else ``90일``."""
    if days % 365 == 0:
        return f"{days // 365}년"
    return f"{days:,}일"
