"""balsong's one error tree. Each class's docstring is its default message."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class BalsongError(Exception):
    """balsong failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


# -- intake ---------------------------------------------------------------------------------------


class ValidationError(BalsongError):
    """The request is not valid."""

    def __init__(self, field: str, reason: str, code: str = "invalid") -> None:
        self.field = field
        self.reason = reason
        self.code = code
        super().__init__(f"{field}: {reason}")


class SenderNotRegistered(ValidationError):
    """The sender number is not registered for this tenant."""

    def __init__(self, number: str, state: str | None = None) -> None:
        reason = f"sender number {number} is not registered"
        if state == "pending":
            reason = f"sender number {number} is registered but not yet approved"
        elif state is not None:
            reason = f"sender number {number} is {state}"
        super().__init__("sender", reason, code="sender_not_registered")


class InsufficientBalance(BalsongError):
    """The tenant's balance does not cover the job."""

    code = "insufficient_balance"

    def __init__(self, needed: Any, available: Any) -> None:
        self.needed = needed
        self.available = available
        super().__init__(f"the job costs {needed} points; the balance is {available}")


class IntakeLimited(BalsongError):
    """The tenant is over an intake limit; try again later."""

    def __init__(self, code: str, message: str, retry_after_seconds: int, limit: str | None = None) -> None:
        self.code = code
        self.retry_after_seconds = retry_after_seconds
        #: The setting that was exceeded, where one was (e.g. ``intake_max_concurrent_per_tenant``).
        self.limit = limit
        super().__init__(message)


class SignInThrottled(BalsongError):
    """Too many failed API-key attempts from this client or for this key prefix; try again later."""

    code = "too_many_attempts"

    def __init__(self, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"too many failed API-key attempts; retry after {retry_after_seconds} s")


class IdempotencyConflict(BalsongError):
    """The Idempotency-Key was used before with a different request body."""


class IdempotencyInProgress(BalsongError):
    """A request with this Idempotency-Key is still being stored."""


class JobNotPaused(BalsongError):
    """The job is not paused, so there is nothing to resume."""

    code = "job_not_paused"


class NotFound(BalsongError):
    """No such object."""


class JobStateConflict(BalsongError):
    """The job's status does not allow this action (409); ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class ResendInProgress(JobStateConflict):
    """A resend of (some of) the same failures of this job is still running (409): its result
    is not known yet, so a second one would send the same recipients again."""

    def __init__(self, source_job_id: int, resend_job_id: int) -> None:
        self.resend_job_id = resend_job_id
        super().__init__(
            "resend_in_progress",
            f"job {resend_job_id} is already resending failures of job {source_job_id} that this"
            " resend would send again; resend once it has finished",
        )


class AccountLocked(BalsongError):
    """Too many failed sign-ins in a row for this operator account: it is locked for a while
    (the console's sign-in page says so; no API route answers it)."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(f"the account is locked until {until.isoformat()} after repeated failed sign-ins")


class AccountDisabled(BalsongError):
    """This operator account has been disabled by an administrator (the console's sign-in page
    says so; no API route answers it)."""
