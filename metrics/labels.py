"""Label values, kept to bounded sets: a label with unbounded values (a job id, a raw path, a code
nobody published) would make Prometheus keep a new series for each one."""

from __future__ import annotations

from typing import Final

#: The carrier adapter that sends each channel (SMS and LMS share the NHN SMS API).
CARRIER_OF_CHANNEL: Final[dict[str, str]] = {"sms": "nhn_sms", "lms": "nhn_sms", "kakao": "nhn_alimtalk"}

#: The value for anything outside a bounded set.
OTHER: Final = "other"


def carrier_of(channel: str) -> str:
    return CARRIER_OF_CHANNEL.get(channel, OTHER)


def http_status(status: int) -> str:
    """An HTTP status as a label; codes outside 100-599 (none should come) are ``other``."""
    return str(status) if 100 <= status <= 599 else OTHER
