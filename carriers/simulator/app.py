"""The simulator's HTTP surface: the provider's routes plus ``/_simulator/*`` for tests."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from carriers.simulator.behaviour import Behaviour
from carriers.simulator.kakao import DEFAULT_SENDER_KEY, KakaoRoutes
from carriers.simulator.queries import list_messages, one_message
from carriers.simulator.sending import ProviderError, header, register_category, register_template, send
from carriers.simulator.state import Store

API = "/sms/v3.0/appKeys/{app_key}"
_CHANNELS = {"sms": "sms", "mms": "lms"}

Handler = Callable[[Request], Awaitable[Response]]


def _channel(request: Request) -> str:
    try:
        return _CHANNELS[request.path_params["kind"]]
    except KeyError:
        raise ProviderError(-9998) from None


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json;charset=UTF-8")


def _refusal(code: int, message: str | None = None, status: int = 200) -> Response:
    error = ProviderError(code, message)
    return _json({"header": header(error.code, error.message)}, status)


class Simulator:
    """One simulated NHN SMS appkey: its credentials, behaviour and store.

    Parameters:
      app_key: the appkey accepted in paths.
      secret_key: the ``X-Secret-Key`` accepted.
      behaviour: the starting knobs.
      kakao_sender_key: the AlimTalk ``senderKey`` accepted (see :mod:`carriers.simulator.kakao`).
    """

    def __init__(
        self, app_key: str, secret_key: str, behaviour: Behaviour, kakao_sender_key: str = DEFAULT_SENDER_KEY
    ) -> None:
        self.app_key = app_key
        self.secret_key = secret_key
        self.store = Store()
        self.behaviour = behaviour
        self._initial = behaviour
        self._random = random.Random(behaviour.seed)
        self.kakao = KakaoRoutes(self, kakao_sender_key)

    def fate(self) -> float:
        """The next draw of the whole-request fault sequence (429, 5xx, timeout)."""
        return self._random.random()

    def configure(self, changes: dict[str, Any]) -> None:
        self.behaviour = self.behaviour.updated(changes)
        if "seed" in changes:
            self._random = random.Random(self.behaviour.seed)

    # -- provider routes --------------------------------------------------------------------------

    def _api(self, handler: Callable[[Request], Awaitable[Response]]) -> Handler:
        """Checks credentials and adds the configured latency around a provider route."""

        async def route(request: Request) -> Response:
            if request.path_params["app_key"] != self.app_key:
                return _refusal(-1000, "Invalid appKey.", 401)
            if request.headers.get("x-secret-key") != self.secret_key:
                # The guide publishes no separate code for a bad secret key; the appkey one is used.
                return _refusal(-1000, "Invalid appKey or secretKey.", 401)
            if request.method == "POST" and "application/json" not in request.headers.get("content-type", ""):
                return _refusal(-9996)
            try:
                response = await handler(request)
            except ProviderError as exc:
                response = _refusal(exc.code, exc.message)
            if self.behaviour.latency_ms > 0:
                await asyncio.sleep(self.behaviour.latency_ms / 1000.0)
            return response

        return route

    async def _payload(self, request: Request) -> Any:
        try:
            return orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise ProviderError(-9997) from None

    async def send(self, request: Request) -> Response:
        channel = _channel(request)
        behaviour = self.behaviour
        store = self.store
        store.counters["requests"] += 1
        fate = self._random.random()
        if fate < behaviour.http_429_rate:
            store.counters["refused_requests"] += 1
            return _refusal(-9999, "Too many requests.", 429)
        fate -= behaviour.http_429_rate
        if fate < behaviour.http_5xx_rate:
            store.counters["refused_requests"] += 1
            return _refusal(-9999, None, 500)
        fate -= behaviour.http_5xx_rate
        payload = await self._payload(request)
        now = time.time()
        if behaviour.rate_cap_per_second > 0 and not store.rate_window(channel).admit(
            now, _recipient_count(payload), behaviour.rate_cap_per_second
        ):
            store.counters["throttled_requests"] += 1
            return _refusal(-9999, "Too many requests.", 429)
        answer = send(store, behaviour, channel, payload, now)
        if fate < behaviour.timeout_rate:
            store.counters["timeouts"] += 1
            await asyncio.sleep(behaviour.timeout_sleep_ms / 1000.0)
        return _json(answer)

    async def list_sent(self, request: Request) -> Response:
        channel = _channel(request)
        answer = list_messages(self.store, channel, request.query_params)
        injected = self.store.injected_results[channel]
        params = request.query_params
        if injected and "startResultDate" in params and params.get("pageNum", "1") == "1":
            # Served once, on the first page of the next report poll, whatever their dates.
            answer["body"]["data"] = [*answer["body"]["data"], *injected]
            injected.clear()
        return _json(answer)

    async def one(self, request: Request) -> Response:
        channel = _channel(request)
        return _json(
            one_message(self.store, channel, request.path_params["request_id"], request.query_params)
        )

    async def add_template(self, request: Request) -> Response:
        return _json(register_template(self.store, self.behaviour, await self._payload(request), time.time()))

    async def list_templates(self, request: Request) -> Response:
        rows = [
            {
                "templateId": t.template_id,
                "categoryId": t.category_id,
                "templateName": t.name,
                "useYn": "Y",
                "sendNo": t.send_no,
                "sendType": t.send_type,
                "title": t.title,
                "body": t.body,
                "delYn": "N",
            }
            for t in self.store.templates.values()
        ]
        return _json(
            {
                "header": header(),
                "body": {"pageNum": 1, "pageSize": len(rows), "totalCount": len(rows), "data": rows},
            }
        )

    async def delete_template(self, request: Request) -> Response:
        if self.store.templates.pop(request.path_params["template_id"], None) is None:
            raise ProviderError(-2107)
        return _json({"header": {"isSuccessful": True, "resultCode": "", "resultMessage": ""}})

    async def add_category(self, request: Request) -> Response:
        return _json(register_category(self.store, await self._payload(request)))

    async def list_categories(self, request: Request) -> Response:
        rows = self.store.categories
        return _json(
            {
                "header": header(),
                "body": {"pageNum": 1, "pageSize": len(rows), "totalCount": len(rows), "data": rows},
            }
        )

    # -- test routes ------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        # The pid lets whoever started the simulator tell its own from another on the same port.
        return _json({"status": "ok", "pid": os.getpid()})

    async def config(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.configure(orjson.loads(await request.body()))
            except (ValueError, TypeError) as exc:
                return _json({"error": str(exc)}, 400)
        return _json(self.behaviour.as_dict())

    async def summary(self, request: Request) -> Response:
        return _json({**self.store.summary(), "kakao_templates": len(self.kakao.state.templates)})

    async def ledger(self, request: Request) -> Response:
        """SMS and LMS rows in acceptance order, then AlimTalk rows in acceptance order."""

        # One snapshot, built whole between two awaits: no send can land half-way through it.
        body = b"".join(
            orjson.dumps(r) + b"\n"
            for rows in itertools.chain(self.store.ledger(), self.kakao.ledger())
            for r in rows
        )
        return Response(body, media_type="application/x-ndjson")

    async def arrivals(self, request: Request) -> Response:
        """Test route: when each accepted request arrived and how many recipients it carried,
        ``[[epoch seconds, recipients], ...]`` in arrival order (every channel): the gaps in it
        are the stalls a fault caused, as the carrier saw them."""
        arrivals = [[r.accepted_at, len(r)] for r in self.store.accepted]
        arrivals += [[r.accepted_at, len(r)] for r in self.kakao.state.accepted]
        return _json(sorted(arrivals))

    async def inject_results(self, request: Request) -> Response:
        """Test route: raw result rows (any JSON, malformed on purpose) for the next report poll
        of ``sms`` or ``mms`` to return as they are."""
        rows = orjson.loads(await request.body())
        if not isinstance(rows, list):
            return _json({"error": "a JSON list of rows"}, 400)
        self.store.injected_results[_channel(request)].extend(rows)
        return _json({"queued": len(rows)})

    async def reset(self, request: Request) -> Response:
        """Forget every message, template and counter; restore the knobs given at start."""
        self.store.reset()
        self.kakao.reset()
        self.behaviour = self._initial
        self._random = random.Random(self._initial.seed)
        return _json({"status": "reset"})

    def routes(self) -> list[Route]:
        api = self._api
        return [
            Route(API + "/sender/{kind:str}", api(self.send), methods=["POST"]),
            Route(API + "/sender/{kind:str}", api(self.list_sent), methods=["GET"]),
            Route(API + "/sender/{kind:str}/{request_id:str}", api(self.one), methods=["GET"]),
            Route(API + "/templates", api(self.add_template), methods=["POST"]),
            Route(API + "/templates", api(self.list_templates), methods=["GET"]),
            Route(API + "/templates/{template_id:str}", api(self.delete_template), methods=["DELETE"]),
            Route(API + "/categories", api(self.add_category), methods=["POST"]),
            Route(API + "/categories", api(self.list_categories), methods=["GET"]),
            *self.kakao.routes(),
            Route("/_simulator/health", self.health, methods=["GET"]),
            Route("/_simulator/config", self.config, methods=["GET", "POST"]),
            Route("/_simulator/ledger", self.ledger, methods=["GET"]),
            Route("/_simulator/ledger/summary", self.summary, methods=["GET"]),
            Route("/_simulator/ledger/arrivals", self.arrivals, methods=["GET"]),
            Route("/_simulator/reset", self.reset, methods=["POST"]),
            Route("/_simulator/results/{kind:str}", self.inject_results, methods=["POST"]),
        ]


def create_app(
    app_key: str,
    secret_key: str,
    behaviour: Behaviour | None = None,
    kakao_sender_key: str = DEFAULT_SENDER_KEY,
) -> Starlette:
    """The simulator as an ASGI app."""
    simulator = Simulator(app_key, secret_key, behaviour or Behaviour(), kakao_sender_key)
    app = Starlette(routes=simulator.routes())
    app.state.simulator = simulator
    return app


def _recipient_count(payload: Any) -> int:
    recipients = payload.get("recipientList") if isinstance(payload, dict) else None
    return len(recipients) if isinstance(recipients, list) else 0
