"""The Dramatiq broker: RabbitMQ with publisher confirms, and an orjson message encoder.

Dramatiq binds actors to a broker when their module is imported, so `actors/__init__.py` installs
the broker before importing the actor modules; building the broker opens no connection.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import orjson
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.encoder import Encoder
from dramatiq.errors import DecodeError
from dramatiq.middleware import Retries

from engine.config import Settings

#: Queues of send_batch messages, one per carrier channel and priority. Transactional traffic
#: (OTP, order notices) has its own queues rather than per-message priorities, which replicated
#: quorum queues lack.
SEND_QUEUES = {"sms": "send.sms", "lms": "send.lms", "kakao": "send.kakao"}
TRANSACTIONAL_QUEUES = {"sms": "send.sms.tx", "lms": "send.lms.tx", "kakao": "send.kakao.tx"}


def send_queue(channel: str, priority: str) -> str:
    return (TRANSACTIONAL_QUEUES if priority == "transactional" else SEND_QUEUES)[channel]


PLAN_QUEUE = "plan"
REPORTS_QUEUE = "reports"
RECONCILE_QUEUE = "reconcile"


class OrjsonEncoder(Encoder):
    """orjson is several times faster than the stdlib encoder and keeps Hangul as UTF-8."""

    def encode(self, data: dict[str, Any]) -> bytes:
        return orjson.dumps(data)

    def decode(self, data: bytes) -> dict[str, Any]:
        try:
            return orjson.loads(data)  # type: ignore[no-any-return]
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"failed to decode message {data[:200]!r}", data, exc) from None


#: Every queue balsong's actors consume.
QUEUES = (*SEND_QUEUES.values(), *TRANSACTIONAL_QUEUES.values(), PLAN_QUEUE, RECONCILE_QUEUE, REPORTS_QUEUE)


def queue_names_with_dramatiq_queues() -> tuple[str, ...]:
    """Every queue, with the delay (``.DQ``) and dead-letter (``.XQ``) queues Dramatiq adds to each."""
    return tuple(f"{queue}{suffix}" for queue in QUEUES for suffix in ("", ".DQ", ".XQ"))


def install_broker(settings: Settings) -> RabbitmqBroker:
    from actors.dead_letters import DeadLetters

    broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True)
    broker.add_middleware(DeadLetters(), before=Retries)
    dramatiq.set_encoder(OrjsonEncoder())
    dramatiq.set_broker(broker)
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker
