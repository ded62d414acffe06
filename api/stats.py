"""Statistics route: a tenant's messages per KST day or hour, from the pre-aggregated counters
(`engine.reporting.stats`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import principal
from api.responses import JSONResponse
from api.scopes import Action, require_for
from engine.accounts.tenants import Principal
from engine.clock import KST
from engine.reporting import stats
from engine.runtime import get_runtime

router = APIRouter(prefix="/v1", default_response_class=JSONResponse)


@router.get("/stats")
def get_stats(
    who: Annotated[Principal, Depends(principal)],
    first: Annotated[
        str | None, Query(alias="from", description="first KST day, YYYY-MM-DD (default: 6 days before to)")
    ] = None,
    last: Annotated[
        str | None, Query(alias="to", description="last KST day, included, YYYY-MM-DD (default: today)")
    ] = None,
    granularity: Annotated[
        str | None,
        Query(description="day (at most 400 days per request) or hour (at most 31 days); default day"),
    ] = None,
    channel: Annotated[str | None, Query(description="sms, lms or kakao; default all")] = None,
) -> JSONResponse:
    """Messages of the tenant's finished jobs per KST day or hour: sent, delivered, failed,
    unknown, fallbacks, refused at intake, success rate and points charged, with the range's
    totals, its counts per channel and its most common failure reasons."""
    require_for(Action.VIEW_STATS, who)
    rt = get_runtime()
    query = stats.parse_query(rt.clock.now().astimezone(KST).date(), first, last, granularity, channel)
    # Counters may lag the primary by the replica's delay (docs/scaling.md), like the history.
    with rt.read_pool.connection() as conn:
        found = stats.read_stats(conn, who.tenant_id, query)
    return JSONResponse(found.as_json())
