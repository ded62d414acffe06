"""A job request's body, read as it arrives within the intake budget (`engine.intake.intake_budget`).

`IntakeSlot` holds a share of this API process's budget and of the tenant's (Redis) from before
the first byte of the body is read until the job is stored, renewing the tenant's lease while it
runs; leaving the slot (a stored job, a refusal, an error, a client gone mid-body) gives both
back. The body goes through `engine.intake.job_request.JobRequestReader` chunk by chunk, so an unknown
field, a syntax error or too many recipients is answered before the rest of the body is read.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from engine.config import Settings
from engine.intake.intake_budget import FIRST_CHUNKED_BYTES, BudgetLimits, ProcessBudget, TenantLease
from engine.intake.intake_limits import IntakeLimits
from engine.intake.job_request import JobRequest, JobRequestReader
from engine.runtime import get_runtime


def process_budget(settings: Settings) -> ProcessBudget:
    """The budget one API process keeps for all its tenants (on ``app.state.intake_budget``)."""
    return ProcessBudget(
        BudgetLimits(
            max_bytes_in_flight=settings.intake_max_bytes_in_flight_per_process,
            max_concurrent=settings.intake_max_concurrent_per_process,
        )
    )


class IntakeSlot:
    """One job submission's place in the intake budget (``limits``: the tenant's, from
    `engine.intake.intake_limits`); ``read`` reads its body."""

    def __init__(self, request: Request, tenant_id: int, limits: IntakeLimits) -> None:
        rt = get_runtime()
        self.request = request
        self.settings = rt.settings
        self.process: ProcessBudget = request.app.state.intake_budget
        self.lease = TenantLease(
            rt.redis,
            rt.keys,
            tenant_id,
            BudgetLimits(
                max_bytes_in_flight=limits.max_bytes_in_flight, max_concurrent=limits.max_concurrent
            ),
            rt.settings.intake_lease_seconds,
        )
        declared = request.headers.get("content-length")
        self.declared = int(declared) if declared and declared.isdigit() else None
        self.reserved = 0
        self._entered = False
        self._heartbeat: asyncio.Task[None] | None = None

    async def __aenter__(self) -> IntakeSlot:
        first = self.declared if self.declared is not None else FIRST_CHUNKED_BYTES
        self.process.enter(first)
        try:
            await run_in_threadpool(self.lease.take, first)
        except BaseException:
            self.process.leave(first)
            raise
        self._entered = True
        self.reserved = first
        self._heartbeat = asyncio.create_task(self._renew_lease())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._entered:
            self.process.leave(self.reserved)
            await asyncio.shield(run_in_threadpool(self.lease.release))

    async def read(self) -> JobRequest:
        """The job request, read chunk by chunk; a chunked body's budget grows as it arrives.

        Raises:
          ValidationError: the body is no acceptable job request (as soon as that is known).
          IntakeLimited: a chunked body outgrew what its budgets had room for.
        """
        reader = JobRequestReader(self.settings.max_recipients_per_job)
        received = 0
        async for chunk in self.request.stream():
            received += len(chunk)
            if received > self.reserved:
                await self._grow(received)
            reader.feed(chunk)
        return reader.finish()

    async def _grow(self, received: int) -> None:
        # Doubling, up to the largest body there can be (a larger one is refused 413 anyway).
        wanted = max(received, min(2 * self.reserved, self.settings.max_job_request_bytes))
        self.process.grow(wanted - self.reserved)
        self.reserved = wanted
        await run_in_threadpool(self.lease.take, wanted)

    async def _renew_lease(self) -> None:
        while True:
            await asyncio.sleep(self.settings.intake_lease_seconds / 3)
            await run_in_threadpool(self.lease.renew)
