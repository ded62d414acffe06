"""Error answers (`api.problems`) and request ids (`api.request_id`) on a small app: the outages
and failures the integration tests cannot cause at will."""

from __future__ import annotations

import asyncio
import logging

import httpx
import psycopg
import pytest
import redis.exceptions
from fastapi import FastAPI
from psycopg_pool import PoolTimeout

from api import problems
from api.request_id import RequestId
from engine.logs import RequestContext

FAILURES: dict[str, Exception] = {
    "pool": PoolTimeout("no connection within 2 s"),
    "database": psycopg.OperationalError("server closed the connection"),
    "redis": redis.exceptions.ConnectionError("connection refused"),
    "bug": RuntimeError("a bug"),
}


def small_app(logged: list[logging.LogRecord]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestId)
    problems.install(app, html_not_found={})

    @app.get("/fail/{what}")
    def fail(what: str) -> None:
        logging.getLogger("test").info("about to fail")
        raise FAILURES[what]

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record)

    handler = Keep()
    handler.addFilter(RequestContext())
    logging.getLogger("test").addHandler(handler)
    logging.getLogger("test").setLevel(logging.INFO)
    return app


def get(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(call())


@pytest.mark.parametrize("what", ["pool", "database", "redis"])
def test_an_outage_is_a_503_problem_with_retry_after(what: str) -> None:
    # Given a route whose database or Redis is down
    app = small_app([])
    # When it is called
    response = get(app, f"/fail/{what}")
    # Then 503 unavailable, a problem, with Retry-After
    assert response.status_code == 503
    assert response.headers["content-type"] == problems.MEDIA_TYPE
    assert response.json()["code"] == "unavailable"
    assert int(response.headers["retry-after"]) == problems.UNAVAILABLE_RETRY_AFTER_SECONDS


def test_a_bug_is_a_500_problem_with_the_request_id_logged() -> None:
    # Given a route with a bug, called with a request id
    logged: list[logging.LogRecord] = []
    app = small_app(logged)
    # When it is called
    response = get(app, "/fail/bug", headers={"X-Request-Id": "trace.1_a-B"})
    # Then 500, a problem naming the request id (header and body), and the route's log line has it
    assert response.status_code == 500
    body = response.json()
    assert response.headers["content-type"] == problems.MEDIA_TYPE
    assert (body["code"], body["instance"], body["request_id"]) == ("internal", "/fail/bug", "trace.1_a-B")
    assert response.headers["x-request-id"] == "trace.1_a-B"
    assert [getattr(r, "request_id", None) for r in logged] == ["trace.1_a-B"]
