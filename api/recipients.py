"""Recipient search route: where one number was sent to across the tenant's jobs
(`engine.reporting.phone_search`)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import principal
from api.responses import JSONResponse
from api.scopes import Action, require_for
from engine.accounts.tenants import Principal
from engine.clock import KST
from engine.reporting import history, phone_search
from engine.runtime import get_runtime

router = APIRouter(prefix="/v1", default_response_class=JSONResponse)


def parse_range(today: date, first: str | None, last: str | None) -> tuple[date, date]:
    """The KST days a search asks for: by default the `phone_search.MAX_DAYS` days ending ``to``
    (today by default)."""
    last_day = history.parse_day("to", last) or today
    first_day = history.parse_day("from", first) or last_day - timedelta(days=phone_search.MAX_DAYS - 1)
    phone_search.check_range(first_day, last_day)
    return first_day, last_day


@router.get("/recipients")
def search_recipients(
    who: Annotated[Principal, Depends(principal)],
    phone: Annotated[str | None, Query(description="the whole number, any form intake accepts")] = None,
    first: Annotated[
        str | None, Query(alias="from", description="first KST day of the jobs' creation, YYYY-MM-DD")
    ] = None,
    last: Annotated[
        str | None,
        Query(alias="to", description="last KST day, included (default today); at most 31 days per search"),
    ] = None,
) -> JSONResponse:
    """The recipient rows sent to ``phone`` across the tenant's jobs created in the range, newest
    job first, each with its job and final outcome; numbers masked; at most 500 rows
    (``truncated``)."""
    require_for(Action.SEARCH_RECIPIENTS, who)
    rt = get_runtime()
    first_day, last_day = parse_range(rt.clock.now().astimezone(KST).date(), first, last)
    wanted = phone_search.PhoneSearch(phone or "", first_day, last_day)
    with rt.read_pool.connection() as conn:
        found = phone_search.search(conn, who.tenant_id, wanted)
    return JSONResponse(found)
