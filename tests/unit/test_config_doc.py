"""docs/configuration.md lists every setting as engine/config.py defines it (issue 25 item 3).

The table between the page's markers is generated from `engine.config.Settings` (``python -m
engine.config_doc --write``); these tests regenerate it and compare, so a setting added, renamed,
re-defaulted or re-documented in the code without the page fails here.
"""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from engine import config_doc
from engine.config import DEVELOPMENT_SECRETS, Settings

VARIABLES = ["BALSONG_" + field.name.upper() for field in fields(Settings)]


def test_the_page_is_what_the_code_generates() -> None:
    # Given docs/configuration.md as committed
    page = config_doc.DOC_PATH.read_text(encoding="utf-8")

    # When its settings table is generated again from engine/config.py
    fresh = config_doc.updated(page)

    # Then nothing changes (else: python -m engine.config_doc --write, and commit the page)
    assert fresh == page, "docs/configuration.md is out of date: run python -m engine.config_doc --write"
    assert config_doc.main(["--check"]) == 0


def test_every_setting_has_one_row_with_its_default_and_a_meaning() -> None:
    # Given the generated block
    block = config_doc.markdown()
    rows = [line for line in block.splitlines() if line.startswith("| `BALSONG_")]

    # Then every setting is named exactly once, in the order of Settings' fields
    named = re.findall(r"`(BALSONG_[A-Z0-9_]+)`", "\n".join(row.split(" | ")[0] for row in rows))
    assert named == VARIABLES
    # And each row has as many units and defaults as settings, and a meaning
    for row in rows:
        settings, units, defaults, meaning = row.strip("| ").split(" | ")
        count = settings.count("`BALSONG_")
        assert units.count("<br>") == defaults.count("<br>") == count - 1, row
        assert len(meaning) > 20, row


def test_a_meaning_is_the_comment_above_and_covers_the_fields_that_follow() -> None:
    # Given the fields' docs read from the source
    docs = config_doc.field_docs()

    # Then a field's meaning is its own #: block, joined into one line
    assert docs["database_url"] == "PostgreSQL, the truth for jobs and per-recipient results."
    # And a field right under another shares its block (the poll and settle times of KakaoTalk)
    assert docs["kakao_report_settle_seconds"] == docs["kakao_report_poll_seconds"]
    assert "polled" in docs["kakao_report_settle_seconds"]
    # And every field has one
    assert set(docs) == {field.name for field in fields(Settings)}
    assert all(docs.values())


def test_defaults_and_units_are_shown_as_they_are_set() -> None:
    # Given some fields of every kind
    by_name = {field.name: field for field in fields(Settings)}

    # Then a default reads as its variable would be written, with a reading aid for big numbers
    assert config_doc.default_text(by_name["retry_deadline_sms_seconds"]) == "`172800` (48 h)"
    assert config_doc.default_text(by_name["max_job_request_bytes"]) == "`209715200` (200 MiB)"
    assert config_doc.default_text(by_name["database_pgbouncer"]) == "`false`"
    assert config_doc.default_text(by_name["public_url"]) == "empty"
    # And a secret shows it has none, and its development value
    for name, public in DEVELOPMENT_SECRETS.items():
        assert config_doc.default_text(by_name[name]) == f"none (secret); development: `{public}`"
        assert config_doc.unit(by_name[name]) == "secret"
    # And the unit comes from the name
    assert config_doc.unit(by_name["rate_limit_sms_per_second"]) == "per second"
    assert config_doc.unit(by_name["callback_retry_hours"]) == "hours"
    assert config_doc.unit(by_name["worker_metrics_port"]) == "TCP port"


def test_only_the_block_between_the_markers_is_replaced() -> None:
    # Given a page with hand-written text around a stale block
    page = f"# Title\n\nhand-written\n\n{config_doc.BEGIN}\nstale\n{config_doc.END}\n\n## After\nkept\n"

    # When it is updated
    fresh = config_doc.updated(page)

    # Then the text around the markers is kept and the block is the generated one
    assert fresh.startswith("# Title\n\nhand-written\n\n" + config_doc.BEGIN)
    assert fresh.endswith(config_doc.END + "\n\n## After\nkept\n")
    assert "stale" not in fresh and "`BALSONG_LOG_LEVEL`" in fresh


def test_a_page_without_its_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match="markers"):
        config_doc.updated("# Configuration\n\nno markers here\n")
