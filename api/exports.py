"""Export routes: a job's recipients as a CSV or XLSX download, and the job list as CSV, streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from api.auth import principal
from api.scopes import Action, require_for
from engine.accounts import audit
from engine.accounts.audit import AuditAction
from engine.accounts.tenants import Principal
from engine.errors import ValidationError
from engine.reporting import exports, history, job_list_export
from engine.reporting.export_xlsx import xlsx_chunks
from engine.runtime import get_runtime

router = APIRouter(prefix="/v1/jobs")

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.get(
    "/{job_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {media: {} for media in MEDIA_TYPES.values()}}},
)
def export_job(
    job_id: int,
    who: Annotated[Principal, Depends(principal)],
    format: Annotated[str, Query(description="csv or xlsx")] = "csv",
    unmasked: Annotated[
        bool, Query(description="whole phone numbers; needs the export:unmasked scope")
    ] = False,
) -> StreamingResponse:
    """Every recipient of the job with its final outcome, one row each (see ``engine.reporting.exports``).

    Phone numbers are masked unless ``unmasked=true`` is asked for by a key with the
    ``export:unmasked`` scope (without it: 403); such a download is written to the audit log.
    The CSV starts at once and streams as PostgreSQL produces it; so does the XLSX, deflated on
    the way.
    """
    require_for(Action.EXPORT_RESULTS, who)
    fmt = exports.check_format(format)
    if unmasked:
        require_for(Action.EXPORT_UNMASKED, who)
    # Exports read the replica, if there is one: they are the heaviest reads, and a finished
    # job's rows no longer change (docs/scaling.md on staleness).
    pool = get_runtime().read_pool
    # Looked up before the response starts, so an unknown job is a 404 and not a broken download.
    with pool.connection() as conn:
        job = exports.find_job(conn, who.tenant_id, job_id)
    if unmasked:
        # Whole phone numbers leave the system: who took them is kept (on the primary).
        with get_runtime().pool.connection() as conn:
            audit.record(
                conn,
                tenant_id=who.tenant_id,
                actor=who.actor,
                action=AuditAction.EXPORT_UNMASKED,
                subject=audit.job_subject(job_id),
                details={"format": fmt, "recipients": job.total},
            )
    return StreamingResponse(
        _body(job, fmt, unmasked),
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{exports.filename(job.id, fmt)}"',
            # Personal data: no shared cache may keep a copy.
            "Cache-Control": "no-store",
        },
    )


def _body(job: exports.ExportJob, fmt: str, unmasked: bool) -> Iterator[bytes]:
    # The connection is held while the file streams: COPY sends the rows over it.
    chunks = exports.csv_chunks if fmt == "csv" else xlsx_chunks
    with get_runtime().read_pool.connection() as conn:
        yield from chunks(conn, job, unmasked=unmasked)


def export_job_list(who: Principal, job_filter: history.JobFilter, format: str = "csv") -> StreamingResponse:
    """The tenant's jobs of ``job_filter`` (발송 자료), one row each, as CSV
    (`engine.reporting.job_list_export`); the API's ``GET /v1/jobs/export`` and the console's
    history download."""
    require_for(Action.LIST_JOBS, who)
    if format != "csv":
        raise ValidationError("format", "must be csv")
    rt = get_runtime()
    name = job_list_export.filename(rt.clock.now(), job_filter)
    return StreamingResponse(
        _job_list_body(who.tenant_id, job_filter, rt.settings.retention_days),
        media_type=MEDIA_TYPES["csv"],
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


def _job_list_body(tenant_id: int, job_filter: history.JobFilter, retention_days: int) -> Iterator[bytes]:
    rt = get_runtime()
    with rt.read_pool.connection() as conn:
        yield from job_list_export.csv_chunks(conn, rt.redis, rt.keys, tenant_id, job_filter, retention_days)
