"""The engine behind the console's money and opt-out pages, on the real PostgreSQL.

Given ledger rows and opt-out lists written through `engine.accounts`, when they are read a page
at a time, filtered, exported or imported from a file, then every reader sees the same rows, the
CSV is what a spreadsheet needs, and an import counts and locates each bad line.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import openpyxl
import psycopg
import pytest

from engine.accounts import billing, opt_outs
from engine.accounts.ledger import LedgerFilter, ledger_page
from engine.accounts.tenants import create_tenant
from engine.clock import KST
from engine.config import Settings
from engine.errors import ValidationError
from engine.reporting import ledger_export, opt_out_export
from tests.security.support import unique
from tests.support.services import settings_env

pytestmark = pytest.mark.integration


def a_tenant(conn: psycopg.Connection) -> int:
    return create_tenant(conn, unique("pages"))


def entries(page: dict[str, object]) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], page["opt_outs"])


def read_csv(chunks: list[bytes]) -> list[list[str]]:
    data = b"".join(chunks)
    assert data.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_the_ledger_pages_by_cursor_and_filters_by_kind_and_kst_day(conn: psycopg.Connection) -> None:
    # Given a tenant with 5 top-ups and an adjustment
    tenant = a_tenant(conn)
    for amount in range(1, 6):
        billing.top_up(conn, tenant, Decimal(amount), memo=f"top-up {amount}")
    billing.adjust(conn, tenant, Decimal("-2.50"), memo='=HYPERLINK("x")')

    # When it is read two rows at a time, Then the pages hold every row once, newest first
    seen: list[int] = []
    after = None
    while True:
        page = ledger_page(conn, tenant, after=after, limit=2)
        seen += [int(entry["id"]) for entry in page["entries"]]
        if page["next_cursor"] is None:
            break
        after = int(page["next_cursor"])
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)

    # When it is filtered by kind, Then only that kind is left
    adjustments = ledger_page(conn, tenant, LedgerFilter(kind="adjustment"))["entries"]
    assert [(e["kind"], e["amount"]) for e in adjustments] == [("adjustment", Decimal("-2.50"))]

    # When it is filtered by KST days, Then today's rows are in and yesterday's range is empty
    today = datetime.now(KST).date()
    assert len(ledger_page(conn, tenant, LedgerFilter(created_from=today, created_to=today))["entries"]) == 6
    yesterday = LedgerFilter(created_to=today - timedelta(days=1))
    assert ledger_page(conn, tenant, yesterday)["entries"] == []

    # When the CSV is made, Then it has every row, numbers with 2 decimals, the memo guarded
    rows = read_csv(list(ledger_export.csv_chunks(conn, tenant, LedgerFilter())))
    assert rows[0] == list(ledger_export.HEADER)
    assert [row[1] for row in rows[1:]] == ["조정", "충전", "충전", "충전", "충전", "충전"]
    assert rows[1][2:4] == ["-2.50", "12.50"] and rows[1][5] == '\'=HYPERLINK("x")'
    assert rows[-1][2:4] == ["1.00", "1.00"]


def test_a_ledger_filter_refuses_what_it_cannot_mean() -> None:
    # Given bad filter values, When they are parsed, Then each is a ValidationError naming its field
    cases = {
        "kind": {"kind": "gift"},
        "created_from": {"created_from": "2026-13-01"},
        "created_to": {"created_from": "2026-12-02", "created_to": "2026-12-01"},
    }
    for field, values in cases.items():
        with pytest.raises(ValidationError) as refused:
            LedgerFilter.parse(**values)
        assert refused.value.field == field
    assert LedgerFilter.parse("", "", "") == LedgerFilter()
    assert LedgerFilter.parse(created_to="2026-12-01").created_to == date(2026, 12, 1)


def test_a_csv_import_counts_every_line_and_names_bad_ones_across_chunks(conn: psycopg.Connection) -> None:
    # Given a tenant with one number on its list, and a CSV longer than an import chunk:
    # a header, 12,000 numbers (one of them the known one, one twice) and bad lines among them
    tenant = a_tenant(conn)
    opt_outs.add(conn, tenant, ["010-5000-0000"])
    lines = ["수신번호"] + [f"010-5000-{i:04d}" for i in range(6000)] + ["010-12", ""]
    lines += [f"010-5001-{i:04d}" for i in range(5999)] + ["not a number", "010-5001-0000"]
    data = io.BytesIO("\n".join(lines).encode("cp949"))

    # When it is imported
    fmt, numbered = opt_outs.read_file(data)
    result = opt_outs.import_numbers(conn, tenant, numbered, source=fmt)

    # Then the new numbers are added, the known and repeated ones counted, each bad line named
    assert fmt == "csv"
    assert (result.read, result.added, result.already, result.refused) == (12_002, 11_998, 2, 2)
    assert [(line, code) for line, code, _ in result.refusals] == [
        (6002, "too_short"),
        (12003, "invalid_character"),
    ]
    assert opt_outs.counts(conn, tenant) == {**dict.fromkeys(opt_outs.SOURCES, 0), "api": 1, "csv": 11_998}


def test_an_xlsx_import_reads_text_and_number_cells_by_row(conn: psycopg.Connection) -> None:
    # Given a workbook: a header, a number as text, an empty row, a number whose 0 Excel ate
    tenant = a_tenant(conn)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["phone"])
    sheet.append(["010-5100-0001"])
    sheet.append([None])
    sheet.append([1051000002])
    saved = io.BytesIO()
    book.save(saved)
    saved.seek(0)

    # When it is imported, Then the text number is added and the number cell refused on its row
    fmt, numbered = opt_outs.read_file(saved)
    result = opt_outs.import_numbers(conn, tenant, numbered, source=fmt)
    assert fmt == "xlsx" and (result.added, result.refused) == (1, 1)
    assert [(line, code) for line, code, _ in result.refusals] == [(4, "unknown_prefix")]

    # And a file that starts like a ZIP but is none is a ValidationError on the file, not a crash
    fmt, numbered = opt_outs.read_file(io.BytesIO(b"PK\x03\x04broken"))
    with pytest.raises(ValidationError) as refused:
        opt_outs.import_numbers(conn, tenant, numbered, source=fmt)
    assert refused.value.field == "file"


def test_the_list_is_searched_by_whole_number_or_last_four_and_exported_masked(
    conn: psycopg.Connection,
) -> None:
    # Given a tenant's list of three numbers, and another tenant with one of them
    tenant, other = a_tenant(conn), a_tenant(conn)
    opt_outs.add(conn, tenant, ["010-5200-1111", "010-5200-2222", "02-520-2222"])
    opt_outs.add(conn, other, ["010-5200-1111"])

    # When it is searched, Then a whole number finds itself, four digits find their numbers
    found = entries(opt_outs.listing(conn, tenant, phone="010 5200 1111"))
    assert [e["phone"] for e in found] == ["010-****-1111"]
    by_last_four = entries(opt_outs.listing(conn, tenant, phone="2222"))
    assert sorted(e["phone"] for e in by_last_four) == ["010-****-2222", "02-***-2222"]
    with pytest.raises(ValidationError):
        opt_outs.listing(conn, tenant, phone="12")

    # When an entry is removed by id, Then only the tenant's own entry goes
    entry = int(found[0]["id"])
    assert opt_outs.remove_entry(conn, other, entry) is False
    assert opt_outs.remove_entry(conn, tenant, entry) is True
    assert opt_outs.listing(conn, other)["total"] == 1

    # When the list is exported, Then every number is masked
    rows = read_csv(list(opt_out_export.csv_chunks(conn, tenant)))
    assert rows[0] == list(opt_out_export.HEADER)
    assert sorted(row[0] for row in rows[1:]) == ["010-****-2222", "02-***-2222"]
    assert {row[1] for row in rows[1:]} == {"API"}


def test_a_file_that_is_no_csv_is_refused_as_a_file(conn: psycopg.Connection) -> None:
    # Given a "CSV" of one line of a million characters (a binary file, say)
    tenant = a_tenant(conn)
    fmt, numbered = opt_outs.read_file(io.BytesIO(b"010-5300-0001\n" + b"x" * 1_000_000))

    # When it is imported, Then it is a ValidationError on the file naming the line
    with pytest.raises(ValidationError) as refused:
        opt_outs.import_numbers(conn, tenant, numbered, source=fmt)
    assert refused.value.field == "file" and "line 2" in refused.value.reason


def test_the_cli_imports_a_file_with_the_same_importer(
    conn: psycopg.Connection, settings: Settings, tmp_path: Path
) -> None:
    # Given a tenant and an XLSX file of two numbers and a bad line
    name = unique("cli-import")
    tenant = create_tenant(conn, name)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for value in ("수신번호", "010-5400-0001", "010-54", "010-5400-0002"):
        sheet.append([value])
    workbook = tmp_path / "numbers.xlsx"
    book.save(workbook)

    # When an operator runs `balsong opt-out import TENANT FILE`
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "opt-out", "import", name, str(workbook)],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    # Then the numbers are on the list, from an XLSX file, and the bad line is named by its row
    assert "2 numbers added" in done.stdout and "1 refused" in done.stdout
    assert "line 3: refused" in done.stderr
    assert opt_outs.counts(conn, tenant)["xlsx"] == 2
