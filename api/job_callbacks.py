"""A job's status callbacks: what became of its events, and replaying them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from api.auth import principal
from api.problems import problem
from api.responses import JSONResponse
from api.scopes import Action, require_for
from engine.accounts import audit
from engine.accounts.audit import AuditAction
from engine.accounts.tenants import Principal
from engine.callbacks.delivery_state import job_callbacks, replay_job
from engine.errors import JobStateConflict
from engine.reporting.views import kst
from engine.runtime import get_runtime

router = APIRouter(prefix="/v1/jobs", default_response_class=JSONResponse)


def callback_state(tenant_id: int, job_id: int) -> dict[str, Any]:
    """The job's callback delivery state, times in KST (the API's and the console's)."""
    with get_runtime().pool.connection() as conn:
        state = job_callbacks(conn, tenant_id, job_id)
    state["endpoint"] = {
        name: kst(value) if name.endswith("_at") else value for name, value in state["endpoint"].items()
    }
    return state


@router.get("/{job_id}/callbacks")
def get_callbacks(job_id: int, who: Annotated[Principal, Depends(principal)]) -> JSONResponse:
    """Where the job's status callbacks go and what became of its events: delivered, pending
    (waiting or being retried; ``last_error`` says why the last try failed) or failed (given up
    after 24 h, or the endpoint answered 410 Gone), with the endpoint's back-off."""
    require_for(Action.VIEW_JOB, who)
    return JSONResponse(callback_state(who.tenant_id, job_id))


def perform_replay(tenant_id: int, job_id: int, *, actor: str) -> int:
    """Queue the job's events again (the API's and the console's replay), audited; how many."""
    rt = get_runtime()
    with rt.pool.connection() as conn, conn.transaction():
        count = replay_job(conn, tenant_id, job_id, rt.clock.now())
        audit.record(
            conn,
            tenant_id=tenant_id,
            actor=actor,
            action=AuditAction.CALLBACKS_REPLAY,
            subject=audit.job_subject(job_id),
            details={"events": count},
        )
    return count


@router.post("/{job_id}/callbacks/replay")
async def replay(job_id: int, who: Annotated[Principal, Depends(principal)]) -> JSONResponse:
    """Send every event of the job again, under the same event ids, and lift its endpoint's
    back-off (or a 410's disabling). 409 ``no_callback_url`` if the job has no callback URL."""
    require_for(Action.REPLAY_CALLBACKS, who)
    try:
        count = await run_in_threadpool(perform_replay, who.tenant_id, job_id, actor=who.actor)
    except JobStateConflict as exc:
        return problem(409, exc.code, str(exc))
    return JSONResponse({"job_id": job_id, "events": count})
