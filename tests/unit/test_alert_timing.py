"""The outage, stall and lease alerts of deploy/prometheus/alerts.yml, evaluated by promtool at the
deployed 15 s scrape and evaluation intervals: each fires within a minute of its fault (a stall:
of the last send slice; a slice runs at least every few seconds while anything is ready to send,
a rate-limit wait handed back to the broker at most 30 s), stays quiet for what is not a fault (a
paused job, retries waiting in the ledger, advertising held over the night, a 15 s blip, the
first slice of a new job) and clears after recovery.

Series values are promtool's: one sample every 15 s, ``AxN`` repeats A N more times, ``A+BxN``
counts up, ``_`` is no sample, ``stale`` a staleness marker (a failed scrape)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.unit.test_observability_deploy import ALERTS, run_promtool

#: The callback dispatcher's scrape target (compose's one replica).
DISPATCHER_UP = 'up{job="balsong-callbacks",instance="callbacks:9193"}'
#: Every dependency reachable and the callback dispatcher scraped, every sample of the 20 minutes
#: a scenario runs.
DEPENDENCIES_UP = {
    **{f'balsong_dependency_up{{dependency="{d}"}}': "1x80" for d in ("postgresql", "redis", "rabbitmq")},
    DISPATCHER_UP: "1x80",
}
SLICES = 'balsong_batch_slices_total{channel="sms",end="finished"}'
QUEUED = "balsong_recipients_queued"


def firing_at(series: dict[str, str], expected: dict[str, set[str]], tmp_path: Path) -> None:
    """Assert that at each eval time of ``expected`` ("6m45s") exactly those alerts fire, over
    ``series`` (on top of every dependency up, unless ``series`` says otherwise)."""
    test = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {"series": s, "values": v} for s, v in {**DEPENDENCIES_UP, **series}.items()
                ],
                "promql_expr_test": [
                    {
                        "expr": 'count by (alertname) (ALERTS{alertstate="firing"})',
                        "eval_time": at,
                        "exp_samples": [
                            {"labels": f'{{alertname="{alert}"}}', "value": 1} for alert in sorted(alerts)
                        ],
                    }
                    for at, alerts in expected.items()
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")

    result = run_promtool("test", "rules", "test.yml", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


# -- a stalled campaign -------------------------------------------------------------------------------


def test_a_stall_fires_within_a_minute_of_the_last_slice_and_clears_when_slices_resume(
    tmp_path: Path,
) -> None:
    """Given 5,000 recipients ready to send, and workers running slices until 5m, none from
    then until 8m, then again
    When promtool evaluates the alerts
    Then BalsongCampaignStalled is not firing at 5m15s, is firing at 6m, and has cleared at
    8m30s."""
    firing_at(
        {
            f'{QUEUED}{{state="ready"}}': "5000x80",
            # 0..200 by 5m; flat until 8m; counting again from 8m15s.
            SLICES: "0+10x20 200x12 210+10x40",
        },
        {"5m": set(), "5m15s": set(), "6m": {"BalsongCampaignStalled"}, "8m30s": set()},
        tmp_path,
    )


def test_a_30_s_rate_limit_wait_raises_no_stall(tmp_path: Path) -> None:
    """Given recipients ready to send whose slices pause for 30 s (the longest rate-limit wait
    handed back to the broker) and go on
    When promtool evaluates the alerts
    Then BalsongCampaignStalled never fires."""
    series = {f'{QUEUED}{{state="ready"}}': "5000x80", SLICES: "0+10x20 200x1 210+10x40"}
    firing_at(series, {at: set() for at in ("5m15s", "5m30s", "5m45s", "6m", "6m15s")}, tmp_path)


@pytest.mark.parametrize(
    ("case", "queued"),
    [
        ("a paused job", {"paused": "5000x80"}),
        ("retries waiting for their due time", {"retry_ledger": "3000x80"}),
        ("advertising held over the night", {"quiet_hours": "2000x80", "retry_ledger": "1000x80"}),
    ],
)
def test_recipients_not_ready_to_send_raise_no_stall(
    case: str, queued: dict[str, str], tmp_path: Path
) -> None:
    """Given recipients queued only for a reason that is no fault, none ready, and no slice for
    twenty minutes
    When promtool evaluates the alerts
    Then BalsongCampaignStalled never fires."""
    series = {f'{QUEUED}{{state="{state}"}}': values for state, values in queued.items()}
    series |= {f'{QUEUED}{{state="ready"}}': "0x80", SLICES: "100x80"}
    firing_at(series, {"1m": set(), "5m": set(), "10m": set(), "19m": set()}, tmp_path)


@pytest.mark.parametrize(
    ("case", "slices"),
    [
        ("its workers ran slices long ago", "100x40 101+10x40"),
        ("a worker that never ran one since it started", "_x40 1+10x40"),
    ],
)
def test_the_first_job_after_a_quiet_spell_raises_no_stall(case: str, slices: str, tmp_path: Path) -> None:
    """Given ten minutes with nothing to send, then a job ready to send whose first slice shows
    at the next scrape (the scheduler's gauge and the worker's counter are scraped apart)
    When promtool evaluates the alerts
    Then BalsongCampaignStalled never fires."""
    series = {f'{QUEUED}{{state="ready"}}': "0x40 1000x40", SLICES: slices}
    firing_at(series, {at: set() for at in ("10m15s", "10m30s", "10m45s", "11m", "12m")}, tmp_path)


# -- outages -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dependency", "alert"),
    [("postgresql", "BalsongDatabaseDown"), ("redis", "BalsongRedisDown"), ("rabbitmq", "BalsongBrokerDown")],
)
def test_an_outage_fires_within_a_minute_and_clears_on_recovery(
    dependency: str, alert: str, tmp_path: Path
) -> None:
    """Given a dependency the scheduler reaches until 2m, not from 2m15s to 4m, then again (and
    the sources that need it unreadable meanwhile)
    When promtool evaluates the alerts
    Then only its outage alert fires, by 45 s after the first failed probe, and it has cleared at
    the first evaluation after recovery."""
    series = {
        f'balsong_dependency_up{{dependency="{dependency}"}}': "1x8 0x7 1x64",
        f'balsong_system_source_up{{source="{dependency}"}}': "1x8 0x7 1x64",
    }
    firing_at(series, {"2m": set(), "2m30s": set(), "3m": {alert}, "4m": {alert}, "4m15s": set()}, tmp_path)


def test_a_probe_failing_once_raises_no_outage(tmp_path: Path) -> None:
    """Given Redis unreachable at one scrape only
    When promtool evaluates the alerts
    Then nothing fires."""
    series = {'balsong_dependency_up{dependency="redis"}': "1x8 0 1x70"}
    firing_at(series, {"2m15s": set(), "2m30s": set(), "2m45s": set(), "3m": set()}, tmp_path)


def test_a_long_outage_raises_its_own_alert_not_the_unreadable_source_one(tmp_path: Path) -> None:
    """Given Redis down for ten minutes, and the Redis and PostgreSQL sources (which need it)
    unreadable meanwhile
    When promtool evaluates the alerts
    Then BalsongRedisDown fires, and BalsongSystemSourceUnreadable does not."""
    series = {
        'balsong_dependency_up{dependency="redis"}': "1x8 0x40 1x30",
        'balsong_system_source_up{source="redis"}': "1x8 0x40 1x30",
        'balsong_system_source_up{source="postgresql"}': "1x8 0x40 1x30",
    }
    firing_at(series, {"9m": {"BalsongRedisDown"}}, tmp_path)


def test_a_scheduler_no_longer_scraped_raises_the_missing_probes_alert(tmp_path: Path) -> None:
    """Given the scheduler's scrapes failing from 2m15s (staleness markers: its gauges vanish)
    When promtool evaluates the alerts
    Then no outage alert can fire, and BalsongDependencyProbesMissing fires a minute later."""
    series = {
        f'balsong_dependency_up{{dependency="{d}"}}': "1x8 stale" for d in ("postgresql", "redis", "rabbitmq")
    }
    firing_at(series, {"2m30s": set(), "3m30s": {"BalsongDependencyProbesMissing"}}, tmp_path)


# -- worker leases ---------------------------------------------------------------------------------------

TAKEOVERS = 'balsong_lease_takeovers_total{channel="sms"}'
HELD = "balsong_batches_held_by_dead_leases"


@pytest.mark.parametrize(
    ("case", "takeovers"),
    [("a counter that grows", "0x12 1x60"), ("a new series: the first takeover since start", "_x13 1x60")],
)
def test_a_takeover_fires_within_a_minute_and_clears_five_minutes_later(
    case: str, takeovers: str, tmp_path: Path
) -> None:
    """Given a batch taken over from a dead worker's lease at 3m15s, and none after
    When promtool evaluates the alerts
    Then BalsongWorkerLeaseExpired fires by 3m45s and has cleared by 9m."""
    series = {TAKEOVERS: takeovers, HELD: "0x80"}
    firing_at(
        series,
        {
            "3m": set(),
            "3m45s": {"BalsongWorkerLeaseExpired"},
            "8m": {"BalsongWorkerLeaseExpired"},
            "9m": set(),
        },
        tmp_path,
    )


def test_batches_held_by_a_dead_lease_for_30_seconds_fire_and_clear_once_released(tmp_path: Path) -> None:
    """Given two batches held by an expired lease from 2m15s to 3m, none before or after, and a
    single scrape at 6m showing one held
    When promtool evaluates the alerts
    Then BalsongWorkerLeaseExpired fires at 2m45s, has cleared at 3m15s, and does not fire for
    the single scrape."""
    series = {HELD: "0x8 2x3 0x12 1 0x40"}
    firing_at(
        series,
        {"2m30s": set(), "2m45s": {"BalsongWorkerLeaseExpired"}, "3m15s": set(), "6m30s": set()},
        tmp_path,
    )


# -- status callbacks ------------------------------------------------------------------------------------

GIVEN_UP = 'balsong_callback_events_total{state="failed"}'


@pytest.mark.parametrize(
    ("case", "failed"),
    [("a counter that grows", "0x12 4x70"), ("a new series: the first give-up since start", "_x13 4x70")],
)
def test_callback_events_given_up_fire_at_once_and_clear_fifteen_minutes_later(
    case: str, failed: str, tmp_path: Path
) -> None:
    """Given four callback events given up at 3m15s (their retry window over, or a 410), none after
    When promtool evaluates the alerts
    Then BalsongCallbacksFailing fires at the first evaluation that sees them and has cleared by
    18m30s, fifteen minutes on."""
    series = {GIVEN_UP: failed, 'balsong_callback_events_total{state="delivered"}': "0+100x83"}
    firing_at(
        series,
        {
            "3m": set(),
            "3m15s": {"BalsongCallbacksFailing"},
            "17m": {"BalsongCallbacksFailing"},
            "18m30s": set(),
        },
        tmp_path,
    )


def test_a_dispatcher_down_for_two_minutes_fires_and_clears_when_it_is_back(tmp_path: Path) -> None:
    """Given the only callback dispatcher unreachable from 2m15s until 7m, then up again
    When promtool evaluates the alerts
    Then BalsongCallbackDispatcherDown (with BalsongProcessDown) fires two minutes on, at 4m15s,
    and has cleared at the first evaluation after recovery."""
    firing_at(
        {DISPATCHER_UP: "1x8 0x19 1x60"},
        {
            "4m": set(),
            "4m30s": {"BalsongProcessDown", "BalsongCallbackDispatcherDown"},
            "7m": {"BalsongProcessDown", "BalsongCallbackDispatcherDown"},
            "7m15s": set(),
        },
        tmp_path,
    )


def test_a_standby_down_is_a_process_down_not_a_dispatcher_down(tmp_path: Path) -> None:
    """Given two dispatcher replicas (one active, one standby), one of them unreachable from 2m15s
    When promtool evaluates the alerts
    Then only BalsongProcessDown fires: the other replica delivers."""
    series = {DISPATCHER_UP: "1x80", 'up{job="balsong-callbacks",instance="callbacks-b:9193"}': "1x8 0x72"}
    firing_at(series, {"4m30s": {"BalsongProcessDown"}, "10m": {"BalsongProcessDown"}}, tmp_path)


def test_a_dispatcher_no_longer_scraped_fires_two_minutes_later(tmp_path: Path) -> None:
    """Given the dispatcher's target gone from 2m15s (a staleness marker, then no sample: its
    scrape config or its pods removed)
    When promtool evaluates the alerts
    Then no BalsongProcessDown can fire, and BalsongCallbackDispatcherDown fires two minutes on."""
    firing_at(
        {DISPATCHER_UP: "1x8 stale"}, {"4m": set(), "4m30s": {"BalsongCallbackDispatcherDown"}}, tmp_path
    )
