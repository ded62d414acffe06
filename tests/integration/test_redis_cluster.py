"""balsong on a real Redis Cluster: three masters started by the test on free ports.

Given balsong pointed at the cluster (``redis+cluster://``), a job on a rate-limited channel
whose carrier refuses some recipients for now runs to completion: the rate limiter's Lua script,
the counters, the result stream, the scheduler's leases and the retry ledger all work across
slots, because every multi-key script or transaction stays within one hash slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from redis import Redis

from engine.db import upgrade
from tests.conftest import TEST_OVERRIDES
from tests.support.arrivals import arrival_times, max_window_count
from tests.support.jobs import wait_finished
from tests.support.redis_cluster import running_redis_cluster
from tests.support.services import REDIS_URL, isolated_settings
from tests.support.stack import Stack, running_stack, submit_sms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CAP = 200.0
RECIPIENTS = 1200


@pytest.fixture(scope="module")
def on_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        **TEST_OVERRIDES,
        "rate_limit_sms_per_second": CAP,
        "retry_base_seconds": 0.3,
        "retry_cap_seconds": 2.0,
    }
    with running_redis_cluster() as cluster_url, isolated_settings(**overrides) as isolated:
        settings = replace(isolated, redis_url=cluster_url)
        upgrade(settings.database_url)
        with running_stack(settings, tmp_path_factory.mktemp("cluster-logs"), worker_processes=2) as stack:
            yield stack


def test_a_rate_limited_job_with_retries_completes_on_redis_cluster(on_cluster: Stack) -> None:
    # Given a carrier that tells about a third of the recipients, each time, to try again later
    client = on_cluster.new_tenant("cluster")
    on_cluster.simulator.configure(reject_mix={"-9999": 0.3}, seed=5)

    # When a job on the channel capped at 200/s is submitted
    job_id = submit_sms(client, "클러스터", [f"010-7000-{i:04d}" for i in range(RECIPIENTS)])
    job = wait_finished(on_cluster, client, job_id, timeout=100)

    # Then every recipient was delivered, each accepted exactly once, some only after retries
    # from the ledger, and no second carried more than the cap (with the limiter's 2 % margin)
    assert job["status"] == "completed", job
    assert job["counts"]["delivered"] == RECIPIENTS, job
    ledger = on_cluster.simulator.ledger()
    assert all(entry["submissions"] == 1 for entry in ledger)
    assert on_cluster.simulator.summary()["rejected_recipients"] > 0
    assert max_window_count(arrival_times(ledger, prefix=f"{job_id}-")) <= CAP * 1.02

    # And balsong's keys were all on the cluster: none reached the machine's own Redis
    with Redis.from_url(REDIS_URL) as shared:
        assert not list(shared.scan_iter(match=f"{on_cluster.settings.redis_prefix}:*", count=1000))
