"""``balsong dead-letters [list|requeue|purge]``: the messages that failed every retry.

They wait in RabbitMQ's dead-letter queues (``<queue>.XQ``, kept 7 days). ``list`` shows each
(queue, actor, job, batch, attempts, last error) and leaves it where it is; ``requeue`` puts each
back on its queue with fresh retries (after the cause is fixed; a batch already sent is not
sent twice, its claim guards it); ``purge`` deletes them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import orjson
import pika
import pika.exceptions
from dramatiq.common import q_name, xq_name

from actors.broker import QUEUES
from actors.dead_letters import message_ids
from engine.config import get_settings


@dataclass(frozen=True, slots=True)
class DeadLetter:
    queue: str
    actor: str
    job_id: int | None
    batch: int | None
    #: Attempts that failed: the stored message is the one of its last retry, whose ``retries``
    #: option counts the retries before it.
    attempts: int
    error: str
    message_id: str


def exception_line(traceback: list[str]) -> str:
    """The ``Type: message`` line of a formatted traceback: the first after its last indented
    (frame) line; an exception's message may run on over further lines (PostgreSQL's CONTEXT)."""
    frames = [i for i, line in enumerate(traceback) if line.startswith(" ")]
    after = frames[-1] + 1 if frames else 0
    return traceback[after] if after < len(traceback) else "(no traceback)"


def parse(body: bytes) -> tuple[DeadLetter, dict[str, Any]]:
    """A dead-lettered Dramatiq message, summarised, and the message itself."""
    message = orjson.loads(body)
    options = message.get("options") or {}
    traceback = (options.get("traceback") or "").rstrip().splitlines()
    ids = message_ids(message.get("args") or [])
    letter = DeadLetter(
        queue=q_name(message.get("queue_name", "?")),
        actor=message.get("actor_name", "?"),
        job_id=ids.get("job_id"),
        batch=ids.get("batch"),
        attempts=int(options.get("retries", 0)) + 1,
        error=exception_line(traceback),
        message_id=message.get("message_id", "?"),
    )
    return letter, message


def dead_letters(url: str, action: str = "list", limit: int = 1000) -> list[DeadLetter]:
    """Read up to ``limit`` dead letters per queue; ``requeue`` or ``purge`` them, or (``list``)
    leave them in place. Returns what was read."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    found: list[DeadLetter] = []
    try:
        for queue in QUEUES:
            # One channel per queue: closing it puts back what ``list`` read without acknowledging.
            channel = connection.channel()
            channel.confirm_delivery()
            try:
                found.extend(_drain(channel, xq_name(queue), action, limit))
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:  # 404: no such queue yet (nothing ever failed there)
                    raise
                continue
            channel.close()
    finally:
        connection.close()
    return found


def _drain(channel: Any, xq: str, action: str, limit: int) -> list[DeadLetter]:
    found = []
    for _ in range(limit):
        method, _properties, body = channel.basic_get(xq, auto_ack=False)
        if method is None:
            break
        letter, message = parse(body)
        found.append(letter)
        if action == "list":
            continue  # left unacknowledged: back in its queue when the channel closes
        if action == "requeue":
            options = message.setdefault("options", {})
            for spent in ("retries", "traceback", "requeue_timestamp", "eta"):
                options.pop(spent, None)
            message["queue_name"] = letter.queue
            channel.basic_publish(
                "", letter.queue, orjson.dumps(message), pika.BasicProperties(delivery_mode=2)
            )
        channel.basic_ack(method.delivery_tag)
    return found


def run(action: str, *, limit: int = 1000) -> int:
    letters = dead_letters(get_settings().broker_url, action, limit)
    print(f"{'queue':<14} {'actor':<26} {'job':>8} {'batch':>6} {'attempts':>8}  error")
    for d in letters:
        job = "" if d.job_id is None else str(d.job_id)
        batch = "" if d.batch is None else str(d.batch)
        print(f"{d.queue:<14} {d.actor:<26} {job:>8} {batch:>6} {d.attempts:>8}  {d.error}")
    verb = {"list": "dead-lettered", "requeue": "requeued", "purge": "purged"}[action]
    print(f"{len(letters)} message(s) {verb}", file=sys.stderr)
    return 0
