"""XML text for any cell (hypothesis), as PostgreSQL writes the XLSX export's rows.

Given any text in a cell — markup, ampersands, backslashes, tabs and line breaks, control
characters, Hangul — when the export's SQL escapes it inside a worksheet cell and COPY writes the
row, then the row is one line of well-formed XML whose cell reads back as the text, less only the
characters XML cannot hold.
"""

from __future__ import annotations

from xml.etree import ElementTree

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from engine.reporting.export_xlsx import cell_columns, row_xml, xml_text
from engine.reporting.exports import HEADER

pytestmark = pytest.mark.integration

#: PostgreSQL text holds any character but NUL; the rest of C0, XML's specials, COPY's escapes.
characters = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
tricky = st.sampled_from(
    ["&", "<", ">", "\\", "\t", "\n", "\r", "\x01", "\x1f", "\ufffe", "]]>", "&amp;", " "]
)
cell_text = st.lists(st.text(alphabet=characters, max_size=8) | tricky, max_size=8).map("".join)

#: What XML 1.0 cannot hold, dropped from cells.
NOT_XML = {chr(c) for c in [*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF]}

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=cell_text)
def test_any_text_reads_back_from_its_cell(conn: psycopg.Connection, value: str) -> None:
    # One row of an export's cells: the job id, the value under test in the free-text column E, the
    # rest empty.
    cells = [sql.SQL("7"), *[sql.NULL] * 3, xml_text(sql.Literal(value)), *[sql.NULL] * (len(HEADER) - 5)]
    query = sql.SQL("COPY (SELECT {row} FROM (SELECT '2' AS n, {cells}) AS q) TO STDOUT").format(
        row=row_xml(free_text={4}), cells=sql.SQL(", ").join(cell_columns(cells))
    )
    with conn.cursor() as cur, cur.copy(query) as copy:
        lines = [bytes(line) for line in copy]
    assert len(lines) == 1 and lines[0].endswith(b"\n") and lines[0].count(b"\n") == 1
    row = ElementTree.fromstring(f'<sheetData xmlns="{MAIN[1:-1]}">'.encode() + lines[0] + b"</sheetData>")[0]
    assert row.get("r") == "2"
    number, text = list(row)
    assert (number.get("r"), number.findtext(f"{MAIN}v")) == ("A2", "7")
    assert (text.get("r"), text.get("t")) == ("E2", "inlineStr")
    assert text.findtext(f"{MAIN}is/{MAIN}t") == "".join(ch for ch in value if ch not in NOT_XML)
