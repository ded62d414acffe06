"""What becomes of a recipient: the one transition table.

Every path that changes a recipient — its submission, a delivery report (webhook or poll),
reconciliation, cancellation, the flusher — asks `decide` what an event does to a recipient in
its current status: the new status, the follow-up the caller must carry out (`FollowUp`, returned,
never performed here), and the counter changes (`Transition.counters`).

Counters are not written transition by transition by hand. Each recipient *stands* for some
counter values in each state (`standing`: a delivered recipient counts once in ``total``,
``sent`` and ``delivered``); a transition moves the counters by the difference between where it
ends and where it began. So the live counters always equal a recount from the rows
(`engine.lifecycle.counters.recount` sums `standing` over them), and every counter change has exactly one
transition that made it.

A KakaoTalk recipient handed to SMS/LMS keeps its place in ``total`` (its row becomes
``fallback``); the SMS/LMS row made for it (``fallback_of`` set) counts everywhere but in
``total``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache

from engine.lifecycle.statuses import RecipientStatus

Status = RecipientStatus


class Event(StrEnum):
    """What happened to a recipient."""

    #: The carrier accepted it; a delivery report will follow.
    ACCEPTED = "accepted"
    #: Delivered (said at submission, or by a report).
    DELIVERED = "delivered"
    #: Failed for good (at submission, or by a report).
    FAILED = "failed"
    #: A passing failure ("try again later", "phone off"): send it again, within the deadline.
    RETRY = "retry"
    #: Its job was cancelled (or its reservation missed) before it was submitted.
    CANCEL = "cancel"
    #: Its channel's report deadline passed since its submission, and the carrier, asked once
    #: more, had no final result either (`engine.lifecycle.report_deadline`).
    NO_REPORT = "no_report"


class FollowUp(StrEnum):
    """What the caller must do after a transition (the engine returns it; actors publish)."""

    NONE = "none"
    #: Put the recipient in a retry batch, due after back-off.
    RETRY_BATCH = "retry_batch"
    #: Its retries ran past the channel's deadline: it ended ``expired``.
    EXPIRY = "expiry"
    #: A KakaoTalk failure: make its SMS/LMS fallback row.
    FALLBACK = "fallback"
    #: Never submitted (its job was cancelled): its batch drops it.
    DROP = "drop"


#: The counter each status counts a recipient in (`engine.lifecycle.counters` names them).
COUNTER_OF_STATUS: Mapping[Status, str] = {
    Status.QUEUED: "queued",
    Status.SUBMITTED: "in_flight",
    Status.DELIVERED: "delivered",
    Status.FAILED: "failed",
    Status.EXPIRED: "expired",
    Status.CANCELLED: "cancelled",
    Status.FALLBACK: "fallbacks",
    Status.UNKNOWN: "unknown",
}
#: Statuses whose recipients count under their reason code (``reason:<code>``): the failures'
#: breakdown. ``unknown`` is no failure; its one reason (``no_report``) is its own counter.
STATUSES_WITH_REASON = frozenset({Status.FAILED, Status.EXPIRED})


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a recipient row stands, as far as the counters care."""

    status: Status
    #: The carrier holds a submission of its current attempt (``submitted_at`` is set).
    submitted: bool = False
    #: An SMS/LMS row made for a failed KakaoTalk recipient (not counted in ``total``).
    fallback_row: bool = False


def standing(row: Standing) -> dict[str, int]:
    """The counter values one recipient row stands for."""
    counts = {COUNTER_OF_STATUS[row.status]: 1}
    if not row.fallback_row:
        counts["total"] = 1
    if row.submitted:
        counts["sent"] = 1
    return counts


@dataclass(frozen=True, slots=True)
class Transition:
    """What an event does to a recipient."""

    before: Standing
    after: Standing
    follow_up: FollowUp
    #: Counter changes (fields of `engine.lifecycle.counters`; the reason code's own count moves with
    #: ``failed`` / ``expired``: see `reason_moves`).
    counters: Mapping[str, int] = field(default_factory=dict)

    @property
    def changes_status(self) -> bool:
        return self.before != self.after

    def reason_moves(self) -> int:
        """+1 when the recipient now counts under its reason code, 0 otherwise."""
        return int(self.after.status in STATUSES_WITH_REASON) - int(
            self.before.status in STATUSES_WITH_REASON
        )


def delta(before: Standing, after: Standing) -> dict[str, int]:
    """Counter changes of moving one row from ``before`` to ``after``."""
    old, new = standing(before), standing(after)
    changes = {name: new.get(name, 0) - old.get(name, 0) for name in old.keys() | new.keys()}
    return {name: change for name, change in changes.items() if change}


#: Where an event takes a recipient, by its current status: (new status, follow-up). Events a
#: status does not list change nothing (a duplicate or late report, a cancel of a recipient
#: already with the carrier). Retries past the deadline and KakaoTalk failures with a fallback
#: are decided in `decide`.
TABLE: Mapping[Status, Mapping[Event, tuple[Status, FollowUp]]] = {
    Status.QUEUED: {
        Event.ACCEPTED: (Status.SUBMITTED, FollowUp.NONE),
        Event.DELIVERED: (Status.DELIVERED, FollowUp.NONE),
        Event.FAILED: (Status.FAILED, FollowUp.NONE),
        Event.RETRY: (Status.QUEUED, FollowUp.RETRY_BATCH),
        Event.CANCEL: (Status.CANCELLED, FollowUp.DROP),
    },
    Status.SUBMITTED: {
        Event.DELIVERED: (Status.DELIVERED, FollowUp.NONE),
        Event.FAILED: (Status.FAILED, FollowUp.NONE),
        Event.RETRY: (Status.QUEUED, FollowUp.RETRY_BATCH),
        Event.NO_REPORT: (Status.UNKNOWN, FollowUp.NONE),
    },
}

#: Statuses from which a recipient goes nowhere any more.
FINAL = frozenset(set(Status) - set(TABLE))


def decide(
    row: Standing, event: Event, *, falls_back: bool = False, past_deadline: bool = False
) -> Transition | None:
    """What ``event`` does to ``row``; None when it changes nothing.

    Parameters:
      falls_back: the recipient is a KakaoTalk message of a job with an SMS/LMS fallback (a
        failure hands it over instead of ending it).
      past_deadline: its channel's retry deadline has passed since its first attempt (a retry
        expires it instead).
    """
    step = TABLE.get(row.status, {}).get(event)
    if step is None:
        return None
    status, follow_up = step
    if event is Event.FAILED and falls_back and not row.fallback_row:
        status, follow_up = Status.FALLBACK, FollowUp.FALLBACK
    elif event is Event.RETRY and past_deadline:
        status, follow_up = Status.EXPIRED, FollowUp.EXPIRY
    # A retry clears the submission (the next attempt is a new one); a final result keeps it.
    submitted = status in (Status.SUBMITTED, Status.DELIVERED) or (
        row.submitted and status not in (Status.QUEUED, Status.CANCELLED)
    )
    after = Standing(status, submitted, row.fallback_row)
    return Transition(row, after, follow_up, delta(row, after))


@cache
def report_delta(after_status: str) -> Mapping[str, int]:
    """Counter changes of a recipient in flight that a report moved to ``after_status`` (the
    flusher applies reports in SQL and learns the new status from the row it changed). Cached:
    the flusher asks once per report; do not change the mapping returned."""
    status = Status(after_status)
    before = Standing(Status.SUBMITTED, submitted=True)
    return delta(before, Standing(status, submitted=status not in (Status.QUEUED, Status.CANCELLED)))
