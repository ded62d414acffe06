"""The SQL that formats export cells, checked against the Python it mirrors, in real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from engine.intake.phone import format_phone, mask_phone
from engine.reporting.export_xlsx import xml_text
from engine.reporting.exports import guarded, normalised_phone_expression, phone_expression

pytestmark = pytest.mark.integration

#: Normalised numbers of every kind intake accepts.
NORMALISED = [
    "01012345678",
    "0111234567",
    "01612345678",
    "0212345678",
    "021234567",
    "0311234567",
    "03112345678",
    "0641234567",
    "07012345678",
    "05041234567",
    "050412345678",
]
#: What intake may store for a refused number: the text as sent (at most 40 characters).
REFUSED = ["not-a-phone", "010-99-1", "+1 555 0100", "", "1234", "15881234", "=1+1", "01012345", "0801234567"]


def evaluate(conn: psycopg.Connection, expression: sql.Composable, value: str | None) -> str | None:
    row = conn.execute(
        sql.SQL("SELECT {e} FROM (SELECT {v}::text AS x) AS t").format(e=expression, v=sql.Literal(value))
    ).fetchone()
    assert row is not None
    return row[0]


X = sql.SQL("x")


@pytest.mark.parametrize("phone", NORMALISED + REFUSED)
def test_sql_masking_matches_mask_phone(conn: psycopg.Connection, phone: str) -> None:
    # Given any stored number, When SQL masks it, Then it reads as engine.intake.phone.mask_phone would
    assert evaluate(conn, phone_expression(X, unmasked=False), phone) == mask_phone(phone)


@pytest.mark.parametrize("phone", NORMALISED)
def test_the_fast_path_for_normalised_numbers_agrees(conn: psycopg.Connection, phone: str) -> None:
    assert evaluate(conn, normalised_phone_expression(X, unmasked=False), phone) == mask_phone(phone)
    assert evaluate(conn, normalised_phone_expression(X, unmasked=True), phone) == format_phone(phone)


@pytest.mark.parametrize("phone", NORMALISED)
def test_unmasked_numbers_are_dashed_in_full(conn: psycopg.Connection, phone: str) -> None:
    assert evaluate(conn, phone_expression(X, unmasked=True), phone) == format_phone(phone)


def test_unmasked_refused_text_is_shown_as_sent_and_guarded(conn: psycopg.Connection) -> None:
    assert evaluate(conn, phone_expression(X, unmasked=True), "not-a-phone") == "not-a-phone"
    assert evaluate(conn, phone_expression(X, unmasked=True), "=1+1") == "'=1+1"
    as_xml = phone_expression(X, unmasked=True, text=xml_text)
    assert evaluate(conn, as_xml, "=1+1") == "=1+1"
    assert evaluate(conn, as_xml, "<1&2>") == "&lt;1&amp;2&gt;"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+82 10", "'+82 10"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("M-1=2", "M-1=2"),  # a trigger inside a cell, not after a separator, is harmless
        ("a;=1+1", "a;'=1+1"),  # a ';' spreadsheet would make a cell of "=1+1"
        ("a,@SUM(A1)", "a,'@SUM(A1)"),
        ("a\t-2", "a\t'-2"),
        ("=1;+2", "'=1;'+2"),
        ("홍길동", "홍길동"),
        ("", ""),
        (None, None),
    ],
)
def test_formula_guard(conn: psycopg.Connection, value: str | None, expected: str | None) -> None:
    # Given a cell value, When it is guarded, Then formula triggers get a leading quote, nothing else
    assert evaluate(conn, guarded(X), value) == expected
