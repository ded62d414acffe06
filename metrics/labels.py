"""Label values, kept to bounded sets: a label with unbounded values (a job id, a raw path, a code
nobody published) would make Prometheus keep a new series for each one."""

from __future__ import annotations

from typing import Final

from carriers import nhn_alimtalk_codes, nhn_sms_codes

#: The carrier adapter that sends each channel (SMS and LMS share the NHN SMS API).
CARRIER_OF_CHANNEL: Final[dict[str, str]] = {"sms": "nhn_sms", "lms": "nhn_sms", "kakao": "nhn_alimtalk"}

#: The value for anything outside a bounded set.
OTHER: Final = "other"

#: balsong's own reason codes (intake refusals, opt-outs, expiry, cancellation) besides the
#: carriers' ``carrier_<code>``.
OWN_REASONS: Final[frozenset[str]] = frozenset(
    {
        "expired",
        "opted_out",
        "cancelled",
        "reservation_missed",
        "empty",
        "invalid_character",
        "invalid_phone",
        "not_korean",
        "unknown_prefix",
        "too_short",
        "too_long",
        "sender_only",
        "missing_variable",
        "unencodable_text",
        "content_too_long",
    }
)

#: Every reason code a failure may carry: ours and the providers' published codes.
KNOWN_REASONS: Final[frozenset[str]] = OWN_REASONS | frozenset(
    f"carrier_{code}"
    for module in (nhn_sms_codes, nhn_alimtalk_codes)
    for code in (*map(str, module.API_CODES), *module.RESULT_CODES)
)


def carrier_of(channel: str) -> str:
    return CARRIER_OF_CHANNEL.get(channel, OTHER)


def reason(code: str | None) -> str:
    """A failure's reason code as a label: a published or balsong code, else ``other``."""
    return code if code in KNOWN_REASONS else OTHER


def http_status(status: int) -> str:
    """An HTTP status as a label; codes outside 100-599 (none should come) are ``other``."""
    return str(status) if 100 <= status <= 599 else OTHER
