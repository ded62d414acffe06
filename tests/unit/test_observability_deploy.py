"""deploy/prometheus and deploy/grafana: promtool accepts them, every alert fires when (and only
when) its condition holds, and every metric they name is one balsong exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "balsong.json"
GRAFANA_PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"

#: Dramatiq's Prometheus middleware's series (its durations renamed to seconds by balsong).
DRAMATIQ_METRICS = {
    "dramatiq_messages_total",
    "dramatiq_message_errors_total",
    "dramatiq_message_retries_total",
    "dramatiq_message_rejects_total",
    "dramatiq_messages_inprogress",
    "dramatiq_delayed_messages_inprogress",
    "dramatiq_message_duration_seconds",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise RuntimeError("promtool is not installed: run `bash scripts/ensure-promtool.sh`")
    return path


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, check=False, cwd=cwd)


def exported_names() -> set[str]:
    """Every series name balsong exports: names in metrics/ with the suffixes their types add."""
    names = set(DRAMATIQ_METRICS)
    for source in (ROOT / "metrics").glob("*.py"):
        for name in re.findall(r'"(balsong_[a-z_]+)"', source.read_text(encoding="utf-8")):
            names |= {name, f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names | {"up"}


def referenced_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(re.findall(r"\b((?:balsong|dramatiq)_[a-z_]+|up)\b", without_strings))


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_config_and_the_rules() -> None:
    """Given deploy/prometheus
    When promtool checks the config (which loads alerts.yml) and the rules
    Then both pass."""
    config = run_promtool("check", "config", "prometheus.yml", cwd=PROMETHEUS)
    rules = run_promtool("check", "rules", "alerts.yml", cwd=PROMETHEUS)

    assert config.returncode == 0, config.stdout + config.stderr
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_config_scrapes_every_balsong_process_on_its_port() -> None:
    """Given prometheus.yml
    When its scrape jobs are read
    Then the API (/metrics on 8000), the worker (9191), the scheduler (9192) and the callback
    dispatcher (9193) are scraped."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}

    assert jobs["balsong-api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert jobs["balsong-api"].get("metrics_path", "/metrics") == "/metrics"
    assert jobs["balsong-worker"]["static_configs"][0]["targets"] == ["worker:9191"]
    assert jobs["balsong-scheduler"]["static_configs"][0]["targets"] == ["scheduler:9192"]
    assert jobs["balsong-callbacks"]["static_configs"][0]["targets"] == ["callbacks:9193"]
    assert config["rule_files"] == ["alerts.yml"]


RUNBOOKS = ROOT / "docs" / "runbooks.md"


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading: lower case, punctuation
    dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_sections() -> dict[str, str]:
    """docs/runbooks.md's level-2 sections: anchor -> text."""
    sections: dict[str, str] = {}
    for chunk in re.split(r"^## ", RUNBOOKS.read_text(encoding="utf-8"), flags=re.M)[1:]:
        heading, _, body = chunk.partition("\n")
        sections[github_anchor(heading)] = body
    return sections


def test_every_alert_links_its_own_runbook_section() -> None:
    """Given the alert rules and docs/runbooks.md
    When each alert's runbook_url is followed
    Then it is docs/runbooks.md#<anchor>, that anchor is the section titled with the alert's name,
    the section says what the alert means, how to confirm it and what to do, and there is no
    section for an alert that does not exist."""
    sections = runbook_sections()
    alerts = {rule["alert"]: rule for rule in alert_rules()}

    for name, rule in alerts.items():
        path, _, anchor = rule["annotations"].get("runbook_url", "").partition("#")
        assert path == "docs/runbooks.md", (name, path)
        assert anchor == github_anchor(name), (name, anchor)
        assert anchor in sections, f"{name}: no section #{anchor} in docs/runbooks.md"
        for part in ("**Means.**", "**Confirm.**", "**Act.**"):
            assert part in sections[anchor], (name, part)
    assert set(sections) == {github_anchor(name) for name in alerts}
    assert github_anchor("BalsongProcessDown") == "balsongprocessdown"
    assert github_anchor("Status callbacks: results pushed") == "status-callbacks-results-pushed"


def test_runbooks_name_only_exported_metrics() -> None:
    """Given docs/runbooks.md
    When the metric names in its queries are compared with what balsong exports
    Then each is exported (a query naming a metric that does not exist confirms nothing)."""
    used = referenced_names(RUNBOOKS.read_text(encoding="utf-8"))

    assert "balsong_dependency_up" in used
    assert not used - exported_names(), sorted(used - exported_names())


def test_alerts_and_dashboard_name_only_exported_metrics() -> None:
    """Given every alert expression and dashboard query
    When the metric names in them are compared with what balsong exports
    Then each is exported (a typo would make an alert that never fires)."""
    exprs = [rule["expr"] for rule in alert_rules()] + dashboard_queries()
    used = set().union(*(referenced_names(e) for e in exprs))

    assert not used - exported_names(), sorted(used - exported_names())
    assert len(dashboard_queries()) > 20


def test_dashboard_panels_have_unique_ids_and_a_status_callbacks_row() -> None:
    """Given the dashboard
    When its panels are read
    Then no two share an id (Grafana would mix them up), and a "Status callbacks" row shows the
    callback events, requests by result and lag percentiles."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [p["id"] for p in dashboard["panels"]]
    row_ys = sorted(p["gridPos"]["y"] for p in dashboard["panels"] if p["type"] == "row")
    (top,) = [p["gridPos"]["y"] for p in dashboard["panels"] if p["title"] == "Status callbacks"]
    bottom = next((y for y in row_ys if y > top), float("inf"))
    exprs = " ".join(
        t["expr"]
        for p in dashboard["panels"]
        if top < p["gridPos"]["y"] < bottom
        for t in p.get("targets", [])
    )

    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert "balsong_callback_events_total" in exprs
    assert "balsong_callback_requests_total" in exprs
    assert "histogram_quantile(0.5, " in exprs and "histogram_quantile(0.99, " in exprs
    assert "balsong_callback_lag_seconds_bucket" in exprs


def datasource_refs(node: Any) -> list[Any]:
    """Every ``datasource`` value anywhere in a dashboard (panels, targets, rows, annotations)."""
    if isinstance(node, dict):
        found = [node["datasource"]] if "datasource" in node else []
        return found + [ref for value in node.values() for ref in datasource_refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in datasource_refs(item)]
    return []


def uids(node: Any) -> list[Any]:
    """Every ``uid`` value anywhere under ``node``."""
    if isinstance(node, dict):
        return ([node["uid"]] if "uid" in node else []) + [u for v in node.values() for u in uids(v)]
    if isinstance(node, list):
        return [u for item in node for u in uids(item)]
    return []


def test_the_dashboard_takes_its_datasource_from_a_variable() -> None:
    """Given the dashboard and the Grafana provisioning files
    When its datasource references are read
    Then it has a datasource template variable (any Prometheus; the provisioned one is the default),
    every reference anywhere in it is that variable (no hard-coded uid: the dashboard imports into
    any Grafana), and the provider loads the dashboards directory docker-compose.yml mounts."""
    datasource = yaml.safe_load((GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text())
    provider = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "balsong.yml").read_text())
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    refs = datasource_refs(dashboard)
    panels_with_queries = [p for p in dashboard["panels"] if p.get("targets")]

    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert refs and all(ref == {"type": "prometheus", "uid": "${datasource}"} for ref in refs), refs
    assert all("datasource" in p for p in panels_with_queries)
    assert set(uids(dashboard["panels"])) == {"${datasource}"}
    assert datasource["datasources"][0]["isDefault"] is True
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_dashboard_opens_on_a_row_of_single_stats() -> None:
    """Given the dashboard
    When its first row is read
    Then it holds only single stats: sent per second, success ratio, recipients in flight, the
    retry backlog, the age of the oldest batch ready to send and the API's 5xx ratio, each from
    the metrics balsong exports for it."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    rows = sorted((p for p in dashboard["panels"] if p["type"] == "row"), key=lambda p: p["gridPos"]["y"])
    top, second = rows[0]["gridPos"]["y"], rows[1]["gridPos"]["y"]
    stats = [p for p in dashboard["panels"] if top < p["gridPos"]["y"] < second]
    exprs = [t["expr"] for p in stats for t in p["targets"]]

    assert top == 0 and len(stats) >= 6
    assert {p["type"] for p in stats} == {"stat"}
    for wanted in (
        'rate(balsong_recipients_total{outcome="submitted"}',
        'rate(balsong_recipients_total{outcome="delivered"}',
        "max(balsong_recipients_in_flight)",
        'max(balsong_recipients_queued{state="retry_ledger"})',
        "max(balsong_oldest_ready_batch_seconds)",
        'rate(balsong_api_requests_total{status=~"5.."}',
    ):
        assert any(wanted in e for e in exprs), wanted


def test_dashboard_panels_do_not_overlap() -> None:
    """Given the dashboard's panels
    When their grid positions are compared
    Then no two cover the same cell, and none is wider than the 24-column grid."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, (panel["title"], cells.get((x, y)))
                cells[(x, y)] = panel["title"]


#: Two minutes of API traffic, one sample a minute: 100 requests a second on two routes, 2 of
#: them 5xx on /v1/jobs only.
API_TRAFFIC = {
    'balsong_api_requests_total{method="POST",route="/v1/jobs",status="202"}': "0+2880x10",
    'balsong_api_requests_total{method="POST",route="/v1/jobs",status="503"}': "0+120x10",
    'balsong_api_requests_total{method="GET",route="/v1/jobs/{job_id}",status="200"}': "0+3000x10",
}


def test_the_api_5xx_ratio_panels_compute_the_ratio_and_zero_without_errors(tmp_path: Path) -> None:
    """Given the dashboard's API 5xx queries and API traffic with and without 5xx answers
    When promtool evaluates them (Grafana's $__rate_interval as 2m)
    Then they give the 5xx share (2 % overall, 4 % of /v1/jobs, 0 for the other route), and 0,
    not no data, when nothing failed."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [
        (p["title"], t["expr"].replace("$__rate_interval", "2m"))
        for p in dashboard["panels"]
        for t in p.get("targets", [])
        if 'balsong_api_requests_total{status=~"5.."}' in t["expr"]
    ]
    overall = [e for _, e in exprs if "by (route)" not in e]
    by_route = [e for _, e in exprs if "by (route)" in e]
    assert len(overall) == 2 and len(by_route) == 1, exprs
    no_errors = {k: v for k, v in API_TRAFFIC.items() if "503" not in k}
    tests = []
    for series, share, route_shares in (
        (API_TRAFFIC, 0.02, {"/v1/jobs": 0.04, "/v1/jobs/{job_id}": 0}),
        (no_errors, 0, {"/v1/jobs": 0, "/v1/jobs/{job_id}": 0}),
    ):
        cases = [
            {"expr": e, "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": share}]} for e in overall
        ]
        cases.append(
            {
                "expr": by_route[0],
                "eval_time": "5m",
                "exp_samples": [
                    {"labels": f'{{route="{route}"}}', "value": value}
                    for route, value in route_shares.items()
                ],
            }
        )
        tests.append(
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": cases,
            }
        )
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump({"rule_files": [str(ALERTS)], "evaluation_interval": "1m", "tests": tests}),
        encoding="utf-8",
    )

    result = run_promtool("test", "rules", "test.yml", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


#: Every dependency reachable for the hour a scenario may run (the scheduler reports them; without
#: them BalsongDependencyProbesMissing fires), and the callback dispatcher scraped (without it
#: BalsongCallbackDispatcherDown fires).
DEPENDENCIES_UP = {
    **{f'balsong_dependency_up{{dependency="{d}"}}': "1x60" for d in ("postgresql", "redis", "rabbitmq")},
    'up{job="balsong-callbacks"}': "1x60",
}

#: (name, input series (PromQL series -> promtool values, one sample a minute), evaluated at
#: minute, the alerts expected to be firing then). A healthy system raises none.
SCENARIOS: list[tuple[str, dict[str, str], int, set[str]]] = [
    (
        "healthy",
        {
            'up{job="balsong-worker"}': "1x40",
            'balsong_queue_messages{queue="send.sms"}': "0x40",
            'balsong_queue_messages{queue="send.sms.XQ"}': "0x40",
            'balsong_recipients_queued{state="ready"}': "0x40",
            "balsong_recipients_in_flight": "50x40",
            'balsong_batch_slices_total{channel="sms",end="finished"}': "0+10x40",
            'balsong_reports_received_total{carrier="nhn_sms",source="poll"}': "0+600x40",
            'balsong_recipients_total{channel="sms",outcome="delivered"}': "0+600x40",
            'balsong_recipients_total{channel="sms",outcome="failed"}': "0+6x40",
            'balsong_carrier_responses_total{carrier="nhn_sms",status="200"}': "0+100x40",
            "balsong_flusher_lag_seconds": "0.5x40",
            "balsong_retry_ledger_overdue_seconds": "0x40",
            'balsong_system_source_up{source="rabbitmq"}': "1x40",
            'balsong_callback_events_total{state="delivered"}': "0+600x40",
            'balsong_callback_requests_total{result="delivered"}': "0+10x40",
            'balsong_callback_requests_total{result="failed"}': "0+1x40",
            'balsong_callback_events_total{state="failed"}': "0x40",
        },
        30,
        set(),
    ),
    ("a process down", {'up{job="balsong-worker"}': "0x10"}, 5, {"BalsongProcessDown"}),
    (
        "the callback dispatcher down",
        {'up{job="balsong-callbacks"}': "0x10"},
        5,
        {"BalsongProcessDown", "BalsongCallbackDispatcherDown"},
    ),
    (
        "no callback dispatcher scraped",
        {'up{job="balsong-callbacks"}': "_x10"},
        5,
        {"BalsongCallbackDispatcherDown"},
    ),
    (
        "callback events given up",
        {
            'balsong_callback_events_total{state="delivered"}': "0+600x40",
            'balsong_callback_events_total{state="failed"}': "0x10 12x30",
        },
        20,
        {"BalsongCallbacksFailing"},
    ),
    (
        "a queue growing",
        {'balsong_queue_messages{queue="send.sms"}': "0+50x40"},
        30,
        {"BalsongQueueGrowing"},
    ),
    (
        "a campaign stalled",
        {
            'balsong_recipients_queued{state="ready"}': "5000x40",
            'balsong_batch_slices_total{channel="sms",end="finished"}': "100x40",
        },
        30,
        {"BalsongCampaignStalled"},
    ),
    (
        "failures above 10%",
        {
            'balsong_recipients_total{channel="sms",outcome="delivered"}': "0+600x40",
            'balsong_recipients_total{channel="sms",outcome="failed"}': "0+120x40",
        },
        30,
        {"BalsongChannelFailureRatioHigh"},
    ),
    (
        "carrier 5xx and 429",
        {
            'balsong_carrier_responses_total{carrier="nhn_sms",status="200"}': "0+100x30",
            'balsong_carrier_responses_total{carrier="nhn_sms",status="503"}': "0+20x30",
            'balsong_carrier_responses_total{carrier="nhn_sms",status="429"}': "0+60x30",
        },
        20,
        {"BalsongCarrierErrors", "BalsongCarrierThrottling"},
    ),
    ("flusher lag", {"balsong_flusher_lag_seconds": "120x20"}, 10, {"BalsongFlusherLagging"}),
    (
        "reports not arriving",
        {
            "balsong_recipients_in_flight": "1000x60",
            'balsong_reports_received_total{carrier="nhn_sms",source="poll"}': "500x60",
        },
        40,
        {"BalsongReportsNotArriving"},
    ),
    (
        "retries overdue, dead letters, RabbitMQ unreadable",
        {
            "balsong_retry_ledger_overdue_seconds": "600x20",
            'balsong_queue_messages{queue="send.sms.XQ"}': "3x20",
            'balsong_system_source_up{source="rabbitmq"}': "0x20",
        },
        10,
        {"BalsongRetryLedgerOverdue", "BalsongDeadLetters", "BalsongSystemSourceUnreadable"},
    ),
]


@pytest.mark.parametrize(("name", "series", "minute", "firing"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_alerts_fire_when_their_condition_holds(
    name: str, series: dict[str, str], minute: int, firing: set[str], tmp_path: Path
) -> None:
    """Given series describing a situation, one sample a minute
    When promtool evaluates alerts.yml over them
    Then exactly the expected alerts are firing at the given minute."""
    test = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": s, "values": v} for s, v in {**DEPENDENCIES_UP, **series}.items()
                ],
                "promql_expr_test": [
                    {
                        "expr": 'count by (alertname) (ALERTS{alertstate="firing"})',
                        "eval_time": f"{minute}m",
                        "exp_samples": [
                            {"labels": f'{{alertname="{alert}"}}', "value": 1} for alert in sorted(firing)
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")

    result = run_promtool("test", "rules", "test.yml", cwd=tmp_path)

    assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


def test_compose_runs_prometheus_and_grafana_with_the_deploy_files() -> None:
    """Given docker-compose.yml
    When its prometheus and grafana services are read
    Then they mount deploy/prometheus and deploy/grafana, have health checks, Grafana waits for a
    healthy Prometheus, and balsong's metrics endpoints listen on the compose network."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]

    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert prometheus["healthcheck"]["test"] and grafana["healthcheck"]["test"]
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert services["worker"]["environment"]["BALSONG_METRICS_HOST"] == "0.0.0.0"
    for name, port in (("worker", "9191"), ("scheduler", "9192"), ("callbacks", "9193")):
        assert f"127.0.0.1:{port}/metrics" in services[name]["healthcheck"]["test"][3], name
