"""Carrier webhooks: ``POST /v1/carriers/{carrier}/reports``.

Checked (the provider's signature), deduplicated (by the provider's ``hooksId``: a replay is
acknowledged and ignored), answered at once, and processed by the ``apply_webhook`` actor. A
call that cannot be queued is answered 503 so the provider delivers it again.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool

from api.inputs import load_json
from api.problems import problem, unavailable
from api.responses import JSONResponse
from carriers.webhooks import InvalidWebhook, parse_envelope, signature_matches
from engine.config import Settings
from engine.errors import ValidationError
from engine.inputs import check_line
from engine.runtime import get_runtime
from metrics import WEBHOOKS

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/carriers", include_in_schema=False)


def webhook_signature(settings: Settings, carrier: str) -> str | None:
    """The signature ``carrier``'s webhook settings were given; None for no carrier of ours."""
    return {"nhn_sms": settings.sms_webhook_signature, "nhn_alimtalk": settings.kakao_webhook_signature}.get(
        carrier
    )


#: How long a hooksId is remembered against replays.
REPLAY_WINDOW_SECONDS = 7 * 24 * 3600


@router.post("/{carrier}/reports", status_code=202)
async def receive(
    carrier: str,
    request: Request,
    signature: str | None = Header(default=None, alias="X-Toast-Webhook-Signature"),
) -> JSONResponse:
    rt = get_runtime()
    expected = webhook_signature(rt.settings, carrier)
    if expected is None:
        return problem(404, "not_found", f"no carrier {carrier!r}")
    if not signature_matches(expected, signature):
        WEBHOOKS.labels(carrier, "bad_signature").inc()
        return problem(401, "bad_signature", "X-Toast-Webhook-Signature does not match")
    raw = await request.body()
    try:
        # The hooks' own text is checked hook by hook by the applier, which sets a bad one aside
        # and applies the rest: one hostile hook must not make the carrier redeliver the call.
        webhook = parse_envelope(load_json(raw, texts=False))
        for name, value in (("hooksId", webhook.hooks_id), ("event", webhook.event)):
            check_line(value, name)
    except ValidationError as exc:
        WEBHOOKS.labels(carrier, "invalid").inc()
        return problem(422, "invalid_webhook", exc.reason, exc.field)
    except InvalidWebhook as exc:
        WEBHOOKS.labels(carrier, "invalid").inc()
        return problem(422, "invalid_webhook", str(exc), "body")
    first_time = await run_in_threadpool(
        rt.redis.set,
        f"{rt.keys.prefix}:webhook:{carrier}:{webhook.hooks_id}",
        1,
        nx=True,
        ex=REPLAY_WINDOW_SECONDS,
    )
    if not first_time:
        WEBHOOKS.labels(carrier, "replayed").inc()
        return JSONResponse({"status": "already received"}, status_code=200)
    try:
        await run_in_threadpool(_enqueue, carrier, raw)
    except Exception:
        # Forget the id so the provider's retry is processed.
        await run_in_threadpool(rt.redis.delete, f"{rt.keys.prefix}:webhook:{carrier}:{webhook.hooks_id}")
        log.exception("could not queue a webhook", extra={"carrier": carrier})
        return unavailable("could not queue the report; deliver it again")
    WEBHOOKS.labels(carrier, "accepted").inc()
    return JSONResponse({"status": "accepted"}, status_code=202)


def _enqueue(carrier: str, raw: bytes) -> None:
    from actors.publish import publish_webhook

    publish_webhook(carrier, raw.decode())
