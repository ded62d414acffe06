"""Metric helpers: batch observations equal one-at-a-time ones, labels stay bounded, and the
multiprocess directory is prepared the way prometheus_client needs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram

from cli.multiprocess import ENV, prepare
from engine.config import Settings
from engine.intake.compliance import OPTED_OUT
from engine.intake.reservations import MISSED_REASON
from engine.lifecycle.pipeline_metrics import KNOWN_REASONS, reason
from engine.lifecycle.results import CANCELLED_REASON
from metrics.histograms import observe_many, observe_n
from metrics.labels import OTHER, carrier_of, http_status

BUCKETS = (0.1, 0.5, 1.0, 5.0)


def _samples(histogram: Histogram) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in histogram.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def _pair() -> tuple[Histogram, Histogram]:
    registry = CollectorRegistry()
    one = Histogram("one_seconds", "by observe", ["channel"], buckets=BUCKETS, registry=registry)
    many = Histogram("many_seconds", "by batch", ["channel"], buckets=BUCKETS, registry=CollectorRegistry())
    return one, many


def _renamed(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> dict[object, float]:
    return {(key[0].replace(name, "h"), key[1]): value for key, value in samples.items()}


def test_observe_many_equals_observe_called_for_each_value() -> None:
    """Given values on, between and beyond the bucket bounds
    When one histogram observes them one at a time and another with observe_many
    Then their buckets, sum and count are the same."""
    values = [0.0, 0.1, 0.1000001, 0.3, 0.5, 0.99, 1.0, 4.0, 5.0, 7.5, 100.0]
    one, many = _pair()

    for value in values:
        one.labels("sms").observe(value)
    observe_many(many.labels("sms"), values)

    assert _renamed(_samples(one), "one_seconds") == pytest.approx(_renamed(_samples(many), "many_seconds"))


def test_observe_n_equals_observe_called_n_times() -> None:
    """Given 250 recipients submitted in one request after 0.7 s
    When one histogram observes 0.7 250 times and another observe_n(0.7, 250)
    Then they agree, and observe_n of nothing observes nothing."""
    one, many = _pair()

    for _ in range(250):
        one.labels("lms").observe(0.7)
    observe_n(many.labels("lms"), 0.7, 250)
    observe_n(many.labels("lms"), 3.0, 0)

    assert _renamed(_samples(one), "one_seconds") == pytest.approx(_renamed(_samples(many), "many_seconds"))


def test_reason_labels_are_bounded_to_published_and_own_codes() -> None:
    """Given reason codes a failure may carry
    When they become labels
    Then published carrier codes and balsong's own pass, and anything else is "other"."""
    assert reason("carrier_3015") == "carrier_3015"
    assert reason("carrier_-2019") == "carrier_-2019"
    assert reason("too_short") == "too_short"
    assert reason("expired") == "expired"
    assert reason(OPTED_OUT) == OPTED_OUT
    assert reason(CANCELLED_REASON) == CANCELLED_REASON
    assert reason(MISSED_REASON) == MISSED_REASON
    assert reason("carrier_99999") == OTHER
    assert reason("01012345678") == OTHER
    assert reason(None) == OTHER
    assert len(KNOWN_REASONS) < 1000


def test_carrier_and_status_labels() -> None:
    """Given channels and HTTP statuses
    When they become labels
    Then channels name their adapter and statuses stay in the HTTP range."""
    assert [carrier_of(c) for c in ("sms", "lms", "kakao", "fax")] == [
        "nhn_sms",
        "nhn_sms",
        "nhn_alimtalk",
        OTHER,
    ]
    assert [http_status(s) for s in (200, 429, 503, 0, 1000)] == ["200", "429", "503", OTHER, OTHER]


def test_prepare_empties_the_kinds_directory_and_points_the_process_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a scheduler sample directory left over from a previous run
    When the scheduler's process group prepares it
    Then it is empty and PROMETHEUS_MULTIPROC_DIR names it (the api's directory is untouched)."""
    monkeypatch.setenv(ENV, str(tmp_path / "previous"))
    settings = Settings(metrics_dir=str(tmp_path))
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "counter_123.db").write_bytes(b"old")
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "counter_9.db").write_bytes(b"api")

    path = prepare(settings, "scheduler")

    assert path == tmp_path / "scheduler"
    assert list(path.iterdir()) == []
    assert (tmp_path / "api" / "counter_9.db").exists()
    assert os.environ[ENV] == str(path)


def test_prepare_refuses_when_prometheus_client_was_imported_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given prometheus_client already imported without a multiprocess directory (this test process)
    When prepare is called
    Then it refuses, rather than let samples silently stay in one process's memory."""
    monkeypatch.delenv(ENV, raising=False)

    with pytest.raises(RuntimeError, match="imported before"):
        prepare(Settings(metrics_dir=str(tmp_path)), "api")


def test_report_results_are_counted_by_channel_outcome_and_reason() -> None:
    """Given one flush pass's changed rows: SMS delivered, failed and sent again, an LMS expiry
    When they are counted
    Then recipients by outcome, failures by reason, retries and submission-to-result
    observations move by exactly those rows (the recipient sent again has no latency)."""
    from prometheus_client import REGISTRY

    from engine.lifecycle.flusher import ReportChange
    from engine.lifecycle.pipeline_metrics import count_report_results

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    watched = {
        "sms delivered": (
            "balsong_recipients_total",
            {"channel": "sms", "carrier": "nhn_sms", "outcome": "delivered"},
        ),
        "sms failed": (
            "balsong_recipients_total",
            {"channel": "sms", "carrier": "nhn_sms", "outcome": "failed"},
        ),
        "lms expired": (
            "balsong_recipients_total",
            {"channel": "lms", "carrier": "nhn_sms", "outcome": "expired"},
        ),
        "sms 3015": (
            "balsong_recipient_failures_total",
            {"channel": "sms", "carrier": "nhn_sms", "reason": "carrier_3015"},
        ),
        "sms other": (
            "balsong_recipient_failures_total",
            {"channel": "sms", "carrier": "nhn_sms", "reason": OTHER},
        ),
        "sms retries": ("balsong_retries_scheduled_total", {"channel": "sms"}),
        "sms latencies": ("balsong_submission_to_result_seconds_count", {"channel": "sms"}),
        "sms latency sum": ("balsong_submission_to_result_seconds_sum", {"channel": "sms"}),
        "lms latencies": ("balsong_submission_to_result_seconds_count", {"channel": "lms"}),
    }
    before = {key: value(name, **labels) for key, (name, labels) in watched.items()}
    changes = [
        ReportChange(1, 1, "delivered", None, None, "sms", None, 0, 2.0),
        ReportChange(1, 2, "delivered", None, None, "sms", None, 0, 3.0),
        ReportChange(1, 3, "failed", "carrier_3015", "no route", "sms", None, 0, 4.0),
        ReportChange(1, 4, "failed", "carrier_77777", "new code", "sms", None, 0, 5.0),
        ReportChange(1, 5, "queued", None, None, "sms", None, 1, None),
        ReportChange(2, 1, "expired", "expired", "too late", "lms", None, 0, 9.0),
    ]

    count_report_results(changes)

    moved = {key: value(name, **labels) - before[key] for key, (name, labels) in watched.items()}
    assert moved == {
        "sms delivered": 2,
        "sms failed": 2,
        "lms expired": 1,
        "sms 3015": 1,
        "sms other": 1,
        "sms retries": 1,
        "sms latencies": 4,
        "sms latency sum": pytest.approx(14.0),  # the counter held earlier tests' sums
        "lms latencies": 1,
    }
