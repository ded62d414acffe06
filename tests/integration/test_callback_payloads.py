"""The callback body is built in PostgreSQL (engine.callbacks.payloads): its phone masking and its
times must give what the Python rules give, for every kind of number balsong stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from engine.callbacks.payloads import masked_phone_sql
from engine.clock import KST
from engine.intake.phone import _RULES, mask_phone


def stored_numbers() -> list[str]:
    """A number of every prefix and length the intake accepts, plus ones it never stores."""
    numbers = []
    for prefix, (shortest, longest, _kind) in _RULES.items():
        for length in range(shortest, longest + 1):
            numbers.append((prefix + "9876543210987")[:length])
    return [*numbers, "01012345678", "garbage", "", "0101234", "010123456789012"]


def test_masking_in_sql_matches_mask_phone(conn: psycopg.Connection) -> None:
    numbers = stored_numbers()
    masked = conn.execute(
        f"""
        SELECT {masked_phone_sql("p.phone")}
        FROM unnest(%s::text[]) WITH ORDINALITY AS p (phone, n)
        ORDER BY p.n
        """,
        (numbers,),
    ).fetchall()
    stored = [n for n in numbers if n.isdigit() and 9 <= len(n) <= 12 and n.startswith("0")]
    assert len(stored) > 20
    for number, (sql,) in zip(numbers, masked, strict=True):
        if number in stored:
            assert sql == mask_phone(number), number
        else:
            assert sql == "****", number


def test_times_in_sql_match_python(conn: psycopg.Connection) -> None:
    start = datetime(2026, 12, 31, 14, 59, 59, 999_999, tzinfo=UTC)
    times = [start + timedelta(microseconds=7_919 * i) for i in range(500)]
    rows = conn.execute(
        """SELECT to_char(at AT TIME ZONE 'Asia/Seoul', 'YYYY-MM-DD"T"HH24:MI:SS.MS"+09:00"')
           FROM unnest(%s::timestamptz[]) WITH ORDINALITY AS t (at, n) ORDER BY n""",
        (times,),
    ).fetchall()
    assert [r[0] for r in rows] == [t.astimezone(KST).isoformat(timespec="milliseconds") for t in times]
