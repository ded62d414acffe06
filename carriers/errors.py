"""The carriers' error tree: how a provider call can fail, as the engine must treat it.

Retryable (nothing was submitted: send the same request again), outcome unknown (the request
left and no answer came: reconcile by reference, never resend) and rejected (the provider
refused the whole request for good). Each class's docstring is its default message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carriers.base import SubmitOutcome


class CarrierError(Exception):
    """The carrier call failed."""

    def __init__(self, message: str | None = None, partial: list[SubmitOutcome] | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())
        #: Outcomes of the provider requests of a batch that did succeed before this failure;
        #: they must be recorded, not resent.
        self.partial: list[SubmitOutcome] = partial or []


class CarrierRetryable(CarrierError):
    """The carrier did not accept the request (connection refused, 5xx before processing, 429);
    nothing was submitted and the same request may be sent again."""

    def __init__(
        self,
        message: str | None = None,
        partial: list[SubmitOutcome] | None = None,
        *,
        throttled: bool = False,
    ) -> None:
        super().__init__(message, partial)
        #: The carrier said "too many requests": the channel must slow down.
        self.throttled = throttled


class CarrierOutcomeUnknown(CarrierError):
    """The request left, but no answer came back (timeout, connection reset): the carrier may
    or may not have accepted it. Reconcile by querying the carrier by reference; never resend."""


class CarrierRejected(CarrierError):
    """The carrier refused the whole request for a reason that will not change on retry
    (bad credentials, malformed request, unregistered sender)."""

    def __init__(self, code: str, message: str, partial: list[SubmitOutcome] | None = None) -> None:
        self.code = code
        super().__init__(f"carrier rejected the request: {code} {message}", partial)
