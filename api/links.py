"""The short-link redirect of tracked links: ``GET /r/{code}``, open to anyone who got the message."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engine.attribution import links
from engine.runtime import get_runtime

router = APIRouter()

_NOT_FOUND = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>링크를 찾을 수 없습니다</title></head>
<body><h1>링크를 찾을 수 없습니다</h1><p>주소가 잘못되었거나 더 이상 쓰이지 않는 링크입니다.</p></body></html>
"""


# Left out of the OpenAPI document: it is for message recipients, not API callers.
@router.get("/r/{code}", include_in_schema=False)
def follow(code: str) -> Response:
    """Count the click and redirect (302) to the link's URL; an unknown code is a 404 page."""
    rt = get_runtime()
    with rt.pool.connection() as conn:
        url = links.record_click(conn, code, rt.clock.now())
    if url is None:
        return HTMLResponse(_NOT_FOUND, status_code=404)
    # no-store: a cached redirect would skip the count on the next click.
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
