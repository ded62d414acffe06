"""A misspelt BALSONG_* variable is reported, not silently ignored (issue 25 item 3).

Given an environment with a ``BALSONG_*`` variable that is no setting, then `unknown_settings`
names it with the setting it most resembles, every process logs it once at start-up, and the
`balsong` command prints it once whatever it runs.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from engine import unknown_settings as module
from engine.unknown_settings import OTHER_VARIABLES, UnknownSetting, setting_variables, unknown_settings

ROOT = Path(__file__).resolve().parents[2]


def test_a_misspelt_setting_is_named_with_the_one_it_resembles() -> None:
    # Given misspellings of three kinds (a letter lost, two swapped, a word cut)
    environ = {
        "BALSONG_DATABSE_URL": "postgresql://db/balsong",
        "BALSONG_REDSI_URL": "redis://r",
        "BALSONG_RATE_LIMIT_SMS_PER_SEC": "100",
    }

    # Then each is reported with the setting meant
    assert unknown_settings(environ) == [
        UnknownSetting("BALSONG_DATABSE_URL", "BALSONG_DATABASE_URL"),
        UnknownSetting("BALSONG_RATE_LIMIT_SMS_PER_SEC", "BALSONG_RATE_LIMIT_SMS_PER_SECOND"),
        UnknownSetting("BALSONG_REDSI_URL", "BALSONG_REDIS_URL"),
    ]
    assert str(unknown_settings(environ)[0]) == (
        "BALSONG_DATABSE_URL is not a balsong setting and is ignored (did you mean BALSONG_DATABASE_URL?)"
    )


def test_a_variable_like_no_setting_is_reported_without_a_guess() -> None:
    assert unknown_settings({"BALSONG_FROBNICATE": "1"}) == [UnknownSetting("BALSONG_FROBNICATE", None)]
    assert str(UnknownSetting("BALSONG_FROBNICATE", None)) == (
        "BALSONG_FROBNICATE is not a balsong setting and is ignored"
    )


def test_settings_known_variables_and_other_programs_variables_are_not_reported() -> None:
    # Given every setting, every known non-setting, and variables without the prefix
    others = ["DATABASE_URL", "PATH", "balsong_env"]
    environ = dict.fromkeys([*setting_variables(), *OTHER_VARIABLES, *others], "x")

    # Then none is reported
    assert unknown_settings(environ) == []


@pytest.fixture
def fresh_report() -> Iterator[None]:
    module.report_unknown_settings.cache_clear()
    yield
    module.report_unknown_settings.cache_clear()


def test_a_process_logs_each_one_once(
    fresh_report: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a process whose environment has a misspelt setting
    monkeypatch.setenv("BALSONG_WORKER_THREAD", "16")

    # When its entry points report unknown settings, more than once (the CLI, then the API app)
    with caplog.at_level(logging.WARNING, logger="balsong.config"):
        first = module.report_unknown_settings()
        module.report_unknown_settings()

    # Then one warning names it and the setting meant, with both as fields of the log line
    assert first == [UnknownSetting("BALSONG_WORKER_THREAD", "BALSONG_WORKER_THREADS")]
    records = [r for r in caplog.records if r.name == "balsong.config"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert records[0].__dict__["variable"] == "BALSONG_WORKER_THREAD"
    assert records[0].__dict__["closest"] == "BALSONG_WORKER_THREADS"


def test_the_cli_prints_it_once_whatever_it_runs() -> None:
    # Given a development environment with a misspelt setting, and a database nobody listens for
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BALSONG_")}
    environ |= {
        "BALSONG_ENV": "development",
        "BALSONG_LOG_LEVL": "DEBUG",
        "BALSONG_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/balsong?connect_timeout=2",
        "PYTHONPATH": str(ROOT),
    }

    # When the CLI runs a one-shot command (which fails: the database is not there)
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "recount", "1"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then its stderr has one JSON warning naming the variable and the setting meant, before the failure
    assert done.returncode != 0
    lines = [orjson.loads(line) for line in done.stderr.splitlines() if "BALSONG_LOG_LEVL" in line]
    assert len(lines) == 1, done.stderr
    assert lines[0]["level"] == "WARNING"
    assert lines[0]["variable"] == "BALSONG_LOG_LEVL" and lines[0]["closest"] == "BALSONG_LOG_LEVEL"
