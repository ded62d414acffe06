"""The simulator's KakaoTalk AlimTalk v2.3 routes, served by the same process as the SMS ones.

Provider routes under ``/alimtalk/v2.3/appkeys/{appkey}`` (same appkey and secret key as the SMS
routes; one sender key, ``--kakao-sender-key``): send, list, get one, result updates, get and list
templates. Test route ``POST /_simulator/kakao/templates`` adds or replaces a template. Knobs
(:class:`~carriers.simulator.behaviour.Behaviour`): ``kakao_failure_mix``,
``kakao_result_delay_ms``, ``clock_offset_seconds``; the whole-request faults (``http_429_rate``,
``http_5xx_rate``, ``timeout_rate``, ``rate_cap_per_second``) apply to AlimTalk sends as to SMS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from carriers.simulator.behaviour import Behaviour
from carriers.simulator.kakao_queries import (
    get_template,
    list_messages,
    list_templates,
    message_results,
    one_message,
)
from carriers.simulator.kakao_sending import add_template, header, refusal, send
from carriers.simulator.kakao_state import KakaoState
from carriers.simulator.sending import ProviderError
from carriers.simulator.state import Store

API = "/alimtalk/v2.3/appkeys/{app_key}"
#: The sender key the simulator accepts unless told otherwise.
DEFAULT_SENDER_KEY = "balsong-sender-key"

Handler = Callable[[Request], Awaitable[Response]]


class Host(Protocol):
    """What the Kakao routes share with the SMS simulator."""

    app_key: str
    secret_key: str
    store: Store
    behaviour: Behaviour

    def fate(self) -> float:
        """The next draw of the whole-request fault sequence."""
        ...


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json;charset=UTF-8")


def _refused(error: ProviderError, status: int = 200) -> Response:
    return _json({"header": header(error.code, error.message)}, status)


class KakaoRoutes:
    """One simulated AlimTalk appkey with one sender key.

    Parameters:
      host: the simulator whose credentials, knobs, fault draws and counters are shared.
      sender_key: the ``senderKey`` accepted.
    """

    def __init__(self, host: Host, sender_key: str = DEFAULT_SENDER_KEY) -> None:
        self.host = host
        self.sender_key = sender_key
        self.state = KakaoState()

    def kakao_now(self) -> float:
        """The Kakao clock: real time plus ``clock_offset_seconds``."""
        return time.time() + self.host.behaviour.clock_offset_seconds

    def _api(self, handler: Handler) -> Handler:
        async def route(request: Request) -> Response:
            host = self.host
            if request.path_params["app_key"] != host.app_key:
                return _refused(refusal(-1000, "Invalid appKey."), 401)
            if request.headers.get("x-secret-key") != host.secret_key:
                return _refused(refusal(-1001, "Invalid secretKey."), 401)
            if request.method == "POST" and "application/json" not in request.headers.get("content-type", ""):
                return _refused(refusal(-9996))
            try:
                response = await handler(request)
            except ProviderError as exc:
                response = _refused(exc)
            if host.behaviour.latency_ms > 0:
                await asyncio.sleep(host.behaviour.latency_ms / 1000.0)
            return response

        return route

    async def send(self, request: Request) -> Response:
        host = self.host
        behaviour, store = host.behaviour, host.store
        store.counters["requests"] += 1
        fate = host.fate()
        if fate < behaviour.http_429_rate:
            store.counters["refused_requests"] += 1
            return _refused(refusal(-9999, "Too many requests."), 429)
        fate -= behaviour.http_429_rate
        if fate < behaviour.http_5xx_rate:
            store.counters["refused_requests"] += 1
            return _refused(refusal(-9999), 500)
        fate -= behaviour.http_5xx_rate
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise refusal(-3002) from None
        now = time.time()
        recipients = payload.get("recipientList") if isinstance(payload, dict) else None
        count = len(recipients) if isinstance(recipients, list) else 0
        if behaviour.rate_cap_per_second > 0 and not store.rate_window("kakao").admit(
            now, count, behaviour.rate_cap_per_second
        ):
            store.counters["throttled_requests"] += 1
            return _refused(refusal(-9999, "Too many requests."), 429)
        answer, _ = send(
            self.state,
            store,
            behaviour,
            self.sender_key,
            payload,
            request.headers.get("x-nc-api-idempotency-key"),
            now,
            self.kakao_now(),
        )
        if fate < behaviour.timeout_rate:
            store.counters["timeouts"] += 1
            await asyncio.sleep(behaviour.timeout_sleep_ms / 1000.0)
        return _json(answer)

    async def list_sent(self, request: Request) -> Response:
        return _json(list_messages(self.state, request.query_params, self.kakao_now()))

    async def one(self, request: Request) -> Response:
        params = request.path_params
        return _json(one_message(self.state, params["request_id"], params["seq"], self.kakao_now()))

    async def results(self, request: Request) -> Response:
        return _json(message_results(self.state, request.query_params, self.kakao_now()))

    async def template(self, request: Request) -> Response:
        params = request.path_params
        return _json(get_template(self.state, self.sender_key, params["sender_key"], params["code"]))

    async def templates(self, request: Request) -> Response:
        asked = request.path_params["sender_key"]
        return _json(list_templates(self.state, self.sender_key, asked, request.query_params))

    async def add_template(self, request: Request) -> Response:
        try:
            template = add_template(self.state, orjson.loads(await request.body()), time.time())
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"templateCode": template.code, "variables": list(template.variables)})

    def ledger(self) -> Iterator[list[dict[str, Any]]]:
        return self.state.ledger(self.kakao_now())

    def reset(self) -> None:
        self.state.reset()

    def routes(self) -> list[Route]:
        api = self._api
        templates = API + "/senders/{sender_key:str}/templates"
        return [
            Route(API + "/messages", api(self.send), methods=["POST"]),
            Route(API + "/messages", api(self.list_sent), methods=["GET"]),
            Route(API + "/messages/{request_id:str}/{seq:str}", api(self.one), methods=["GET"]),
            Route(API + "/message-results", api(self.results), methods=["GET"]),
            Route(templates, api(self.templates), methods=["GET"]),
            Route(templates + "/{code:str}", api(self.template), methods=["GET"]),
            Route("/_simulator/kakao/templates", self.add_template, methods=["POST"]),
        ]
