"""A tenant's opt-out list: numbers that asked to receive none of its advertising.

Only advertising jobs consult it (at intake, see `engine.intake.job_store`): an information message —
an order notice, a password code — still reaches a number that opted out of advertising.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from psycopg import Connection

from engine.intake.phone import InvalidPhone, mask_phone, normalize_recipient

log = logging.getLogger(__name__)

#: Where a number on the list came from (``carrier``: the carrier's 080 opt-out service).
SOURCES = ("api", "csv", "carrier")

#: The free opt-out line every advertising message must carry (`engine.intake.compliance`):
#: "무료수신거부 080-123-4567", "무료 수신거부: 0801234567", "무료거부 080-1234-5678". Its group is
#: the 080 number. Read by Python and by PostgreSQL (an ARE), so it uses syntax both share.
OPT_OUT_LINE = r"무료\s*(?:수신\s*)?거부\s*[:：]?\s*(080-?\d{3,4}-?\d{4})"

# The tenants whose advertising carried a 080 opt-out line with this number (digits only): the
# line is required in every advertising message, so it names its sender.
_TENANTS_OF_080 = """
    SELECT DISTINCT tenant_id FROM jobs
    WHERE advertisement AND regexp_replace(substring(body from %(line)s), '-', '', 'g') = %(number)s
"""


@dataclass(slots=True)
class AddResult:
    #: Numbers newly on the list (numbers already on it are not counted again).
    added: int = 0
    #: Numbers refused, as ``(position in the input, reason)``; the rest were added.
    invalid: list[tuple[int, str]] = field(default_factory=list)


def add(conn: Connection, tenant_id: int, phones: Iterable[str], source: str = "api") -> AddResult:
    """Put numbers on the tenant's list; a bad number is refused alone, with its reason."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    result = AddResult()
    numbers: list[str] = []
    for position, raw in enumerate(phones):
        try:
            numbers.append(normalize_recipient(raw))
        except InvalidPhone as exc:
            result.invalid.append((position, exc.reason))
    if numbers:
        with conn.transaction():
            cursor = conn.execute(
                """
                INSERT INTO opt_outs (tenant_id, phone, source)
                SELECT %s, phone, %s FROM unnest(%s::text[]) AS phone
                ON CONFLICT (tenant_id, phone) DO NOTHING
                """,
                (tenant_id, source, numbers),
            )
            result.added = cursor.rowcount
    return result


def add_from_080(conn: Connection, line: str, phones: Iterable[str]) -> int:
    """Opt-outs the carrier's 080 service took on ``line``: onto the list of every tenant whose
    advertising carried that opt-out number; returns how many entries were added."""
    digits = "".join(ch for ch in line if ch.isdigit())
    tenants = [int(row[0]) for row in conn.execute(_TENANTS_OF_080, {"line": OPT_OUT_LINE, "number": digits})]
    if not tenants:
        log.warning(
            "080 opt-outs for a number no tenant's advertising carried", extra={"count": len(tenants)}
        )
    numbers = list(phones)
    return sum(add(conn, tenant_id, numbers, source="carrier").added for tenant_id in tenants)


def remove(conn: Connection, tenant_id: int, phone: str) -> bool:
    """Take a number off the list (it agreed to advertising again); False if it was not on it."""
    number = normalize_recipient(phone)
    return bool(
        conn.execute("DELETE FROM opt_outs WHERE tenant_id = %s AND phone = %s", (tenant_id, number)).rowcount
    )


def read_csv(text: TextIO) -> list[str]:
    """The numbers of a CSV file: the first column of each row; a header row is skipped."""
    numbers = []
    for row in csv.reader(text):
        if not row or not row[0].strip():
            continue
        value = row[0].strip().lstrip("\ufeff")
        if not any(ch.isdigit() for ch in value):
            continue  # a header such as "phone" or "수신번호"
        numbers.append(value)
    return numbers


def listing(
    conn: Connection, tenant_id: int, *, after: int | None = None, limit: int = 100
) -> dict[str, object]:
    """A page of the list, newest first, numbers masked; the cursor is a row id, not a number."""
    rows = conn.execute(
        """
        SELECT id, phone, source, created_at FROM opt_outs
        WHERE tenant_id = %s AND (%s::bigint IS NULL OR id < %s)
        ORDER BY id DESC LIMIT %s
        """,
        (tenant_id, after, after, limit + 1),
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    total = conn.execute("SELECT count(*) FROM opt_outs WHERE tenant_id = %s", (tenant_id,)).fetchone()
    return {
        "total": int(total[0]) if total else 0,
        "opt_outs": [
            {"phone": mask_phone(phone), "source": source, "created_at": created_at.isoformat()}
            for _, phone, source, created_at in rows
        ],
        "next_cursor": str(rows[-1][0]) if more else None,
    }
