"""Storing a job's tracked-link codes, with the job: COPY into ``link_codes``, drawn again on a
collision (`engine.attribution.links` says what the codes are)."""

from __future__ import annotations

from datetime import datetime

from psycopg import Connection, errors

from engine.attribution.links import CODE_ATTEMPTS, LINK_VARIABLE_PREFIX, new_code, short_url
from engine.intake.intake import PreparedJob, RecipientRow


def store_codes(conn: Connection, job_id: int, job_created_at: datetime, job: PreparedJob) -> None:
    """COPY the short codes of the job's recipients into ``link_codes``, before its recipients
    are stored. Inside the caller's transaction; on a code collision, that attempt is rolled
    back to a savepoint and every code is drawn again, the recipients' link values with them
    (same length, so no channel choice changes)."""
    assert job.link_base_url is not None
    urls, base_url = job.tracked_urls, job.link_base_url
    # Recipients are stored valid ones first, in this order: seq is the position.
    rows = [(seq, row) for seq, row in enumerate(job.valid_rows()) if row.links]
    link_indexes = tuple(job.variables.index(f"{LINK_VARIABLE_PREFIX}{i + 1}") for i in range(len(urls)))
    for attempt in range(CODE_ATTEMPTS):
        try:
            created = job_created_at.isoformat()
            lines = [
                f"{code}\t{job_id}\t{created}\t{seq}\t{_copy_text(url)}\n"
                for seq, row in rows
                for code, url in zip(row.links or (), urls, strict=True)
            ]
            with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY_CODES) as copy:
                copy.write("".join(lines))
            return
        except errors.UniqueViolation:
            if attempt + 1 == CODE_ATTEMPTS:
                raise
            _redraw(rows, link_indexes, base_url)


_COPY_CODES = "COPY link_codes (code, job_id, job_created_at, seq, url) FROM STDIN"


def _redraw(rows: list[tuple[int, RecipientRow]], link_indexes: tuple[int, ...], base_url: str) -> None:
    for _, row in rows:
        codes = tuple(new_code() for _ in link_indexes)
        values = list(row.values or ())
        for index, code in zip(link_indexes, codes, strict=True):
            values[index] = short_url(base_url, code)
        row.links, row.values = codes, tuple(values)


def _copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
