"""The recipient transition table, driven by random histories of outcomes and reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.lifecycle.statuses import RecipientStatus as Status
from engine.lifecycle.transitions import (
    FINAL,
    Event,
    FollowUp,
    Standing,
    Transition,
    decide,
    delta,
    report_delta,
    standing,
)

#: How far along its life a status is, within one attempt.
RANK = {Status.QUEUED: 0, Status.SUBMITTED: 1, **{s: 2 for s in FINAL}}


@dataclass
class Row:
    standing: Standing
    attempt: int = 0
    falls_back: bool = False

    @property
    def progress(self) -> tuple[int, int]:
        return (self.attempt, RANK[self.standing.status])


def recount(rows: list[Row]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in rows:
        counts.update(standing(row.standing))
    return counts


#: One step of a history: which recipient, what happened, and whether it came after the deadline.
steps = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from(list(Event)), st.booleans()),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(history=steps, falls_back=st.lists(st.booleans(), min_size=5, max_size=5))
def test_random_histories_move_forward_and_counters_equal_a_recount(
    history: list[tuple[int, Event, bool]], falls_back: list[bool]
) -> None:
    # Given five queued recipients (some KakaoTalk with a fallback), and live counters as intake
    # sets them
    rows = [Row(Standing(Status.QUEUED), falls_back=f) for f in falls_back]
    live: Counter[str] = recount(rows)
    made_by: list[Transition] = []
    # When random events arrive for them: duplicates, out of order, late
    for index, event, late in history:
        row = rows[index % len(rows)]
        before = row.progress
        transition = decide(row.standing, event, falls_back=row.falls_back, past_deadline=late)
        if transition is None:
            continue
        made_by.append(transition)
        row.standing = transition.after
        live.update(transition.counters)
        if transition.follow_up is FollowUp.RETRY_BATCH:
            row.attempt += 1
        # Then the recipient only ever moves forward (a retry is a later attempt)
        assert row.progress > before, (before, row.progress, transition)
        if transition.follow_up is FollowUp.FALLBACK:
            fallback = Row(Standing(Status.QUEUED, fallback_row=True))
            rows.append(fallback)
            live.update(standing(fallback.standing))
    # Then the live counters equal a recount from the rows
    assert +live == +recount(rows)
    # and every counter change was made by exactly one transition, each changing the row
    for transition in made_by:
        assert transition.changes_status or transition.follow_up is FollowUp.RETRY_BATCH
        assert dict(transition.counters) == delta(transition.before, transition.after)


def test_final_statuses_take_no_event() -> None:
    # Given a recipient in each final status, submitted or not
    for status in FINAL:
        for submitted in (False, True):
            # When any event comes for it, Then nothing changes
            for event in Event:
                assert decide(Standing(status, submitted), event) is None


def test_a_duplicate_acceptance_or_a_cancel_in_flight_changes_nothing() -> None:
    in_flight = Standing(Status.SUBMITTED, submitted=True)
    assert decide(in_flight, Event.ACCEPTED) is None
    assert decide(in_flight, Event.CANCEL) is None


def test_submission_outcomes_move_the_counters_as_the_recorder_always_did() -> None:
    queued = Standing(Status.QUEUED)
    accepted = decide(queued, Event.ACCEPTED)
    delivered = decide(queued, Event.DELIVERED)
    failed = decide(queued, Event.FAILED)
    handed_over = decide(queued, Event.FAILED, falls_back=True)
    assert accepted is not None and delivered is not None and failed is not None and handed_over is not None
    assert accepted.counters == {"queued": -1, "in_flight": 1, "sent": 1}
    assert delivered.counters == {"queued": -1, "delivered": 1, "sent": 1}
    assert failed.counters == {"queued": -1, "failed": 1} and failed.reason_moves() == 1
    assert handed_over.counters == {"queued": -1, "fallbacks": 1}
    assert handed_over.follow_up is FollowUp.FALLBACK


def test_a_retry_report_past_the_deadline_expires_the_recipient() -> None:
    in_flight = Standing(Status.SUBMITTED, submitted=True)
    again = decide(in_flight, Event.RETRY)
    too_late = decide(in_flight, Event.RETRY, past_deadline=True)
    assert again is not None and again.follow_up is FollowUp.RETRY_BATCH
    assert again.counters == {"in_flight": -1, "queued": 1, "sent": -1}
    assert too_late is not None and too_late.after.status is Status.EXPIRED
    assert too_late.follow_up is FollowUp.EXPIRY
    assert report_delta(Status.EXPIRED) == too_late.counters


def test_no_report_by_the_deadline_ends_a_recipient_in_flight_unknown() -> None:
    # Given a recipient in flight, and one in each other status
    in_flight = Standing(Status.SUBMITTED, submitted=True)
    # When its report deadline passes with no final result
    step = decide(in_flight, Event.NO_REPORT)
    # Then it ends unknown: no longer in flight, still sent (the carrier took it), no failure
    assert step is not None and step.after == Standing(Status.UNKNOWN, submitted=True)
    assert step.follow_up is FollowUp.NONE
    assert step.counters == {"in_flight": -1, "unknown": 1} and step.reason_moves() == 0
    assert Status.UNKNOWN in FINAL
    # and for a recipient not in flight (queued, or already final) the deadline changes nothing
    for status in Status:
        if status is not Status.SUBMITTED:
            assert decide(Standing(status, status is not Status.QUEUED), Event.NO_REPORT) is None
