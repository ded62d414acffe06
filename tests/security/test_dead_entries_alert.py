"""The BalsongEntriesSetAside alert (deploy/prometheus/alerts.yml), evaluated by promtool beside
the other alert scenarios (tests/unit/test_observability_deploy.py): it fires on the first entry
set aside, even by a stage whose counter series did not exist before, and stays quiet otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.unit.test_observability_deploy import ALERTS, run_promtool

SERIES = 'balsong_dead_entries_total{stage="flusher",reason="apply_failed"}'


def annotations() -> dict[str, str]:
    """The rule's annotations as they read for the series under test."""
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"][0]["rules"]
    rule = next(r for r in rules if r.get("alert") == "BalsongEntriesSetAside")
    texts: dict[str, str] = rule["annotations"]
    return {
        name: text.replace("{{ $labels.stage }}", "flusher").replace("{{ $labels.reason }}", "apply_failed")
        for name, text in texts.items()
    }


def evaluate(values: str, minute: int, firing: bool, tmp_path: Path) -> None:
    test = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": SERIES, "values": values}],
                "alert_rule_test": [
                    {
                        "eval_time": f"{minute}m",
                        "alertname": "BalsongEntriesSetAside",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "ticket",
                                    "stage": "flusher",
                                    "reason": "apply_failed",
                                },
                                "exp_annotations": annotations(),
                            }
                        ]
                        if firing
                        else [],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")
    result = run_promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("case", "values", "minute", "firing"),
    [
        ("a counter that grows", "0 0 0 0 1 1 1 1 1 1", 6, True),
        ("a new series: the stage's first entry since its process started", "_ _ _ _ 1 1 1 1 1 1", 6, True),
        ("a counter that stopped growing long ago", "0 1 1x40", 35, False),
        ("a series that never moved", "0x40", 30, False),
    ],
)
def test_the_alert_fires_when_an_entry_is_set_aside_and_only_then(
    case: str, values: str, minute: int, firing: bool, tmp_path: Path
) -> None:
    """Given the counter of entries set aside, one sample a minute
    When promtool evaluates alerts.yml
    Then BalsongEntriesSetAside fires exactly when an entry was set aside in the last 15 minutes."""
    evaluate(values, minute, firing, tmp_path)
