"""Quorum queues: with ``BALSONG_QUEUE_TYPE=quorum`` every queue balsong declares is a quorum
queue with a delivery limit and a dead-letter queue, and the pipeline runs on them unchanged.

Each test has its own vhost (and database, key prefix): a queue's type is fixed when it is first
declared, so quorum queues cannot share the session's classic vhost.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from actors.broker import QUEUES, QuorumRabbitmqBroker, make_broker
from engine.config import Settings
from engine.db import upgrade
from tests.conftest import TEST_OVERRIDES
from tests.support.jobs import wait_finished
from tests.support.services import isolated_settings
from tests.support.stack import running_stack, submit_sms

pytestmark = pytest.mark.integration

DELIVERY_LIMIT = 3


@pytest.fixture
def quorum_settings() -> Iterator[Settings]:
    with isolated_settings(**TEST_OVERRIDES, queue_type="quorum", queue_delivery_limit=DELIVERY_LIMIT) as s:
        yield s


def vhost_of(settings: Settings) -> str:
    return settings.broker_url.rsplit("/", 1)[1]


def declared_queues(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each queue of the settings' vhost: its type and arguments, as RabbitMQ reports them."""
    out = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_queues",
            "-p",
            vhost_of(settings),
            "name",
            "type",
            "arguments",
            "--formatter",
            "json",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return {
        q["name"]: {"type": q["type"], **{name: value for name, _type, value in q["arguments"]}}
        for q in json.loads(out)
    }


def test_every_queue_is_declared_as_a_quorum_queue_with_a_delivery_limit(quorum_settings: Settings) -> None:
    # Given the quorum setting; When the broker declares every balsong queue
    broker = make_broker(quorum_settings)
    assert isinstance(broker, QuorumRabbitmqBroker)
    try:
        for queue in QUEUES:
            broker.declare_queue(queue, ensure=True)
    finally:
        broker.close()

    # Then each queue, its delay queue and its dead-letter queue is a quorum queue; the first
    # two have the delivery limit and dead-letter into the third; none has priorities
    queues = declared_queues(quorum_settings)
    assert len(queues) == 3 * len(QUEUES)
    for queue in QUEUES:
        for name in (queue, f"{queue}.DQ"):
            assert queues[name]["type"] == "quorum", name
            assert queues[name]["x-delivery-limit"] == DELIVERY_LIMIT, name
            assert queues[name]["x-dead-letter-exchange"] == "", name
            assert queues[name]["x-dead-letter-routing-key"] == f"{queue}.XQ", name
            assert "x-max-priority" not in queues[name], name
        assert queues[f"{queue}.XQ"]["type"] == "quorum"


def test_a_message_redelivered_past_the_limit_goes_to_the_dead_letter_queue(
    quorum_settings: Settings,
) -> None:
    # Given balsong's send.sms queue declared as a quorum queue, and one message on it
    broker = make_broker(quorum_settings)
    try:
        broker.declare_queue("send.sms", ensure=True)
    finally:
        broker.close()
    connection = pika.BlockingConnection(pika.URLParameters(quorum_settings.broker_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()  # a quorum queue has the message once a majority wrote it
        channel.basic_publish("", "send.sms", b"poison", pika.BasicProperties(delivery_mode=2))

        # When a consumer takes it and hands it back, over and over (as a crashing worker would)
        returned = 0
        deadline = time.monotonic() + 60
        while dead_letters(channel) == 0:
            assert time.monotonic() < deadline, f"not dead-lettered after {returned} returns"
            method, _properties, _body = channel.basic_get("send.sms")
            if method is None:
                time.sleep(0.05)  # handed back but not yet available again
                continue
            channel.basic_nack(method.delivery_tag, requeue=True)
            returned += 1
            assert returned <= DELIVERY_LIMIT + 1, "message redelivered past its delivery limit"

        # Then after the limit it is no longer redelivered: it waits in the dead-letter queue
        assert returned in (DELIVERY_LIMIT, DELIVERY_LIMIT + 1)
        assert channel.queue_declare("send.sms", passive=True).method.message_count == 0
    finally:
        connection.close()


def dead_letters(channel: Any) -> int:
    return int(channel.queue_declare("send.sms.XQ", passive=True).method.message_count)


@pytest.mark.slow  # ~8 s: the default run stays under 10 min
def test_a_job_runs_to_completion_on_quorum_queues(quorum_settings: Settings, tmp_path: Path) -> None:
    # Given balsong's processes running with quorum queues
    upgrade(quorum_settings.database_url)
    with running_stack(quorum_settings, tmp_path, worker_processes=1, worker_threads=4) as stack:
        client = stack.new_tenant("quorum")
        phones = [f"010-5000-{i:04d}" for i in range(2500)]

        # When a 2,500-recipient SMS job (three batches) is submitted
        job_id = submit_sms(client, "쿼럼 큐 시험", phones)

        # Then it completes, every recipient reached the carrier exactly once, and the queues the
        # workers consumed are quorum queues
        job = wait_finished(stack, client, job_id)
        assert job["status"] == "completed", job
        submissions = stack.submissions(job_id)
        assert len(submissions) == len(phones)
        assert set(submissions.values()) == {1}
    queues = declared_queues(quorum_settings)
    assert queues["send.sms"]["type"] == "quorum"
    assert {q["type"] for q in queues.values()} == {"quorum"}
