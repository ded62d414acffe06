"""The simulator's behaviour knobs, and the deterministic draws they drive.

Per-recipient fates (submit-time refusal, final result) are drawn from a hash of the seed and the
reference, so a test can predict them with :func:`draw`; whole-request faults (429, 5xx,
timeout) are drawn from a seeded random sequence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

#: Salt of the final-result draw (``failure_mix``).
FINAL = "final"
#: Salt of the submit-time refusal draw (``reject_mix``); the attempt number is appended.
REJECT = "reject"
#: Salt of the never-reported draw (``no_report_rate``).
NO_REPORT = "no_report"
#: The final code of a message whose result never comes: it stays "processing" (SMS/LMS
#: ``msgStatus`` 2, AlimTalk without a result code) in every answer, for ever.
NEVER = ""


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the simulated provider behaves. Replaced whole on every change, never mutated."""

    #: Added to every API answer, in milliseconds.
    latency_ms: float = 0.0
    #: Time from acceptance to a message's final result, in milliseconds.
    result_delay_ms: float = 0.0
    #: Final result code of receiving -> fraction of accepted recipients ending with it.
    failure_mix: Mapping[str, float] = field(default_factory=dict)
    #: Per-recipient submit-time API code (e.g. ``"-2019"``) -> fraction of recipients refused.
    reject_mix: Mapping[str, float] = field(default_factory=dict)
    #: Fraction of send requests answered HTTP 500 (-9999) without accepting anything.
    http_5xx_rate: float = 0.0
    #: Fraction of send requests answered HTTP 429 without accepting anything.
    http_429_rate: float = 0.0
    #: Fraction of send requests accepted and recorded, then answered only after
    #: ``timeout_sleep_ms`` (longer than the client waits: an outcome-unknown timeout).
    timeout_rate: float = 0.0
    #: How long a "timed out" request sleeps before answering, in milliseconds.
    timeout_sleep_ms: float = 30_000.0
    #: The provider's own cap, in recipients per second per channel (0: none). A send request
    #: that would take the last second's recipients past it is answered HTTP 429, accepting
    #: nothing, as a throttled account is.
    rate_cap_per_second: float = 0.0
    #: Seed of every draw.
    seed: int = 0
    #: Most templates one appkey may register (the provider's limit is 1000, error -2112).
    max_templates: int = 1000
    #: AlimTalk: final delivery result code -> fraction of accepted recipients ending with it
    #: (e.g. ``{"3019": 0.1, "3020": 0.02}``: not a KakaoTalk user, AlimTalk blocked).
    kakao_failure_mix: Mapping[str, float] = field(default_factory=dict)
    #: AlimTalk: time from acceptance to a message's final result, in milliseconds (Kakao may take
    #: up to two days; pair long delays with ``clock_offset_seconds``).
    kakao_result_delay_ms: float = 0.0
    #: Added to the real time to make the AlimTalk simulator's clock for results and idempotency
    #: keys, in seconds: moving it forward lets simulated days pass at once.
    clock_offset_seconds: float = 0.0
    #: Fraction of accepted recipients (SMS, LMS and AlimTalk) whose result never comes: the
    #: provider goes on listing them as accepted and in progress, and no report ever names them
    #: (a carrier that lost the handset's receipt). Drawn per reference, like the final result.
    no_report_rate: float = 0.0

    def updated(self, changes: Mapping[str, Any]) -> Behaviour:
        """A copy with ``changes`` applied; raises ``ValueError`` on an unknown or bad knob."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown knobs: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name in _MIXES:
                values[name] = _mix(name, value)
            elif name in ("seed", "max_templates"):
                values[name] = int(value)
            else:
                number = float(value)
                if number < 0 or (name.endswith("_rate") and number > 1):
                    raise ValueError(f"{name}: out of range: {value}")
                values[name] = number
        return replace(self, **values)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready knobs."""
        values = asdict(self)
        for name in _MIXES:
            values[name] = dict(getattr(self, name))
        return values


_MIXES = ("failure_mix", "reject_mix", "kakao_failure_mix")


def _mix(name: str, value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}: expected a map of code to fraction")
    mix = {str(code): float(fraction) for code, fraction in value.items()}
    if any(f < 0 for f in mix.values()) or sum(mix.values()) > 1.0 + 1e-9:
        raise ValueError(f"{name}: fractions must be >= 0 and sum to at most 1")
    return mix


def fraction(seed: int, salt: str, reference: str) -> float:
    """A stable number in [0, 1) for (seed, salt, reference)."""
    digest = hashlib.blake2b(f"{seed}:{salt}:{reference}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def never_reported(behaviour: Behaviour, reference: str) -> bool:
    """True for a recipient whose result ``behaviour`` says never comes (``no_report_rate``)."""
    rate = behaviour.no_report_rate
    return rate > 0 and fraction(behaviour.seed, NO_REPORT, reference) < rate


def draw(seed: int, salt: str, reference: str, mix: Mapping[str, float]) -> str | None:
    """The code ``mix`` assigns to ``reference`` (codes take consecutive slices of [0, 1) in
    sorted order), or ``None`` for the remainder."""
    if not mix:
        return None
    point = fraction(seed, salt, reference)
    edge = 0.0
    for code in sorted(mix):
        edge += mix[code]
        if point < edge:
            return code
    return None
