"""The Dramatiq broker: RabbitMQ with publisher confirms, and an orjson message encoder.

Dramatiq binds actors to a broker when their module is imported, so `actors/__init__.py` installs
the broker before importing the actor modules; building the broker opens no connection.

With ``BALSONG_QUEUE_TYPE=quorum`` every queue is a quorum queue (replicated over the RabbitMQ
cluster) with a delivery limit; `QuorumRabbitmqBroker` is the one place that changes the queue
arguments Dramatiq's broker hard-codes.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import orjson
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker
from dramatiq.common import xq_name
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


#: Every queue balsong's actors consume (Dramatiq adds a ``.DQ`` delay and ``.XQ`` dead-letter
#: queue beside each).
QUEUES = (
    *SEND_QUEUES.values(),
    *TRANSACTIONAL_QUEUES.values(),
    PLAN_QUEUE,
    RECONCILE_QUEUE,
    REPORTS_QUEUE,
)


def queue_names_with_dramatiq_queues() -> tuple[str, ...]:
    """Every queue, with the delay (``.DQ``) and dead-letter (``.XQ``) queues Dramatiq adds to each."""
    return tuple(f"{queue}{suffix}" for queue in QUEUES for suffix in ("", ".DQ", ".XQ"))


class QuorumRabbitmqBroker(RabbitmqBroker):
    """Dramatiq's RabbitMQ broker, declaring quorum queues instead of classic ones.

    Dramatiq declares, for each queue Q, Q itself and its delay queue Q.DQ (both dead-lettering
    into Q.XQ through the default exchange) and the dead-letter queue Q.XQ (messages expire after
    a week). This broker keeps that layout and adds, to all three, ``x-queue-type: quorum``, and
    to Q and Q.DQ a delivery limit: a message delivered that many times without an ack (a worker
    killed mid-batch, over and over) is dead-lettered into Q.XQ rather than redelivered forever.
    It is no loss of work: a batch's state is in PostgreSQL and the scheduler republishes a
    batch neither claimed nor confirmed (``republish_after_seconds``).

    Quorum queues ignore per-message priorities (RabbitMQ 3.x has no ``x-max-priority`` for
    them); transactional traffic has queues of its own instead, so ``max_priority`` is refused.

    Parameters:
      delivery_limit(int): Deliveries of one message before it is dead-lettered.
      **kwargs: As for `RabbitmqBroker`.
    """

    def __init__(self, *, delivery_limit: int, **kwargs: Any) -> None:
        if kwargs.get("max_priority") is not None:
            raise ValueError("quorum queues do not support max_priority; use separate queues")
        super().__init__(**kwargs)
        self.delivery_limit = delivery_limit

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        # Used by Dramatiq for Q and Q.DQ.
        arguments: dict[str, Any] = super()._build_queue_arguments(queue_name)
        arguments["x-queue-type"] = "quorum"
        arguments["x-delivery-limit"] = self.delivery_limit
        return arguments

    def _declare_xq_queue(self, queue_name: str) -> Any:
        # Dramatiq's own declaration with the queue type added; the TTL must stay one static
        # value, as messages expire from the head of the queue.
        return self.channel.queue_declare(
            queue=xq_name(queue_name),
            durable=True,
            arguments={"x-queue-type": "quorum", "x-message-ttl": DEAD_MESSAGE_TTL},
        )


def make_broker(settings: Settings) -> RabbitmqBroker:
    """The broker ``settings.queue_type`` asks for; it opens no connection yet."""
    if settings.queue_type == "quorum":
        return QuorumRabbitmqBroker(
            url=settings.broker_url, confirm_delivery=True, delivery_limit=settings.queue_delivery_limit
        )
    return RabbitmqBroker(url=settings.broker_url, confirm_delivery=True)


def install_broker(settings: Settings) -> RabbitmqBroker:
    from actors.dead_letters import DeadLetters

    broker = make_broker(settings)
    broker.add_middleware(DeadLetters(), before=Retries)
    dramatiq.set_encoder(OrjsonEncoder())
    dramatiq.set_broker(broker)
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker
