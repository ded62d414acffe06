"""CSV escaping for any text (hypothesis), as PostgreSQL writes exports.

Given any text in a cell — quotes, commas, line breaks, Hangul, formula starters — when the
export's SQL guards it and COPY writes it as CSV, then a CSV reader gets back exactly that text,
with a ``'`` before every formula trigger a spreadsheet could take for the start of a cell
(the text's start, or after a ``,`` ``;`` or tab).
"""

from __future__ import annotations

import csv
import io

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from engine.reporting.exports import CELL_SEPARATORS, FORMULA_TRIGGERS, guard_cell, guarded

pytestmark = pytest.mark.integration

#: PostgreSQL text holds any character but NUL.
characters = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
cell_text = (
    st.text(alphabet=characters, max_size=40)
    | st.builds(
        lambda start, rest: start + rest,
        st.sampled_from(FORMULA_TRIGGERS),
        st.text(alphabet=characters, max_size=10),
    )
    | st.builds(
        lambda head, separator, trigger, rest: head + separator + trigger + rest,
        st.text(alphabet=characters, max_size=10),
        st.sampled_from(CELL_SEPARATORS),
        st.sampled_from(FORMULA_TRIGGERS),
        st.text(alphabet=characters, max_size=10),
    )
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=cell_text)
def test_any_cell_reads_back_as_written_and_never_as_a_formula(conn: psycopg.Connection, value: str) -> None:
    query = sql.SQL("COPY (SELECT {}, 'next') TO STDOUT (FORMAT csv)").format(guarded(sql.Literal(value)))
    out = io.BytesIO()
    with conn.cursor() as cur, cur.copy(query) as copy:
        for chunk in copy:
            out.write(chunk)
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8"), newline="")))
    assert len(rows) == 1 and rows[0][1] == "next"
    # Then it reads back as Python's twin of the guard writes it
    assert rows[0][0] == guard_cell(value)
    # And no cell that any separator makes of it starts a formula, yet only quotes were added
    for separator in CELL_SEPARATORS:
        assert not any(piece.startswith(FORMULA_TRIGGERS) for piece in rows[0][0].split(separator))
    assert rows[0][0].replace("'", "") == value.replace("'", "")
