"""Job and recipient statuses: the one definition every layer reads.

Both are ``StrEnum``: a member is the text stored in PostgreSQL and shown in the API
(``JobStatus.CANCELLED == "cancelled"``), so SQL parameters, JSON and comparisons with stored
values need no conversion.

A recipient moves only forward::

    queued -> submitted -> delivered | failed | expired
    submitted -> unknown                 (no final result by its channel's report deadline)
    queued -> cancelled                  (its job was cancelled, or its reservation missed)
    submitted -> fallback                (a KakaoTalk message failed; an SMS/LMS row goes on)

A job::

    scheduled -> accepted -> sending -> completed | partially_failed | failed
    scheduled -> cancelled | missed
    preparing -> accepted (a resend job once its recipients are copied) | cancelled
    accepted | sending <-> paused;  accepted | sending | paused | preparing -> cancelled
"""

from __future__ import annotations

from enum import StrEnum


class RecipientStatus(StrEnum):
    """Where one recipient's message stands."""

    #: Stored, not yet handed to a carrier (or waiting for a retry).
    QUEUED = "queued"
    #: Accepted by the carrier; its delivery report has not come yet.
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    FAILED = "failed"
    #: Its retries ran past the channel's deadline.
    EXPIRED = "expired"
    #: A KakaoTalk recipient whose message failed and who was handed to SMS/LMS (a second row).
    FALLBACK = "fallback"
    #: Never submitted: its job was cancelled, or its reservation missed.
    CANCELLED = "cancelled"
    #: Accepted by the carrier, but no final result came by the channel's report deadline, nor
    #: when the carrier was asked once more (`engine.lifecycle.report_deadline`): reason
    #: ``no_report``. The carrier charged it on acceptance, so it is not refunded.
    UNKNOWN = "unknown"


class JobStatus(StrEnum):
    """Where a whole job stands."""

    #: A reservation waiting for its time.
    SCHEDULED = "scheduled"
    #: A resend job whose recipients are being copied.
    PREPARING = "preparing"
    ACCEPTED = "accepted"
    SENDING = "sending"
    #: Stopped by its failure ratio (or an operator) until resumed.
    PAUSED = "paused"
    COMPLETED = "completed"
    PARTIALLY_FAILED = "partially_failed"
    #: Every recipient failed or expired.
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: A reservation found due too long after its time (the system was down): never sent.
    MISSED = "missed"


#: Recipient statuses after which nothing about the recipient changes any more.
FINAL_RECIPIENT_STATUSES = frozenset(
    {
        RecipientStatus.DELIVERED,
        RecipientStatus.FAILED,
        RecipientStatus.EXPIRED,
        RecipientStatus.CANCELLED,
        RecipientStatus.UNKNOWN,
    }
)
#: Recipient statuses that count as a failure of the job (and are refunded at settlement).
#: Not ``unknown``: nobody knows it failed (the message may well have arrived), the carrier
#: charged it, and resending it could deliver it twice; a job whose only shortfall is unknown
#: results is ``completed``.
FAILED_RECIPIENT_STATUSES = frozenset({RecipientStatus.FAILED, RecipientStatus.EXPIRED})

#: Job statuses after which nothing of the job is sent any more.
FINISHED_JOB_STATUSES = frozenset(
    {JobStatus.COMPLETED, JobStatus.PARTIALLY_FAILED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.MISSED}
)
#: Job statuses in which it plans and submits no new batch (batches with a carrier stay, and
#: are reported); a paused job's batches stay where they are instead (`JOB_MAY_SUBMIT`).
HALTED_JOB_STATUSES = frozenset({JobStatus.CANCELLED})
#: Job statuses from which an operator may cancel (`engine.dispatch.cancel.cancel_job`).
CANCELLABLE_JOB_STATUSES = frozenset(set(JobStatus) - FINISHED_JOB_STATUSES)

#: Korean labels of recipient statuses, for the console and exports alike.
RECIPIENT_STATUS_LABELS: dict[str, str] = {
    RecipientStatus.QUEUED: "대기",
    RecipientStatus.SUBMITTED: "전송 중",
    RecipientStatus.DELIVERED: "성공",
    RecipientStatus.FAILED: "실패",
    RecipientStatus.EXPIRED: "만료",
    RecipientStatus.FALLBACK: "대체 발송",
    RecipientStatus.CANCELLED: "취소",
    RecipientStatus.UNKNOWN: "결과 미수신",
}
#: Korean labels of job statuses.
JOB_STATUS_LABELS: dict[str, str] = {
    JobStatus.SCHEDULED: "예약",
    JobStatus.PREPARING: "준비 중",
    JobStatus.ACCEPTED: "접수",
    JobStatus.SENDING: "전송 중",
    JobStatus.PAUSED: "일시 정지",
    JobStatus.COMPLETED: "완료",
    JobStatus.PARTIALLY_FAILED: "일부 실패",
    JobStatus.FAILED: "실패",
    JobStatus.CANCELLED: "취소",
    JobStatus.MISSED: "예약 누락",
}
