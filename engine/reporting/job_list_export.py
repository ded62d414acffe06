"""A tenant's job list (발송 자료) as CSV: one row per job of a date range, the history's rows.

Made like the other exports (`engine.reporting.exports`): UTF-8 with BOM so that Excel reads the
Korean, RFC 4180 with every cell quoted, the formula guard on every cell of text a caller wrote
(sender, title, body, template code), times in KST (``YYYY-MM-DD HH:MM:SS``). Points are plain
numbers with two decimals, which spreadsheets read as numbers.

The rows are the history's (`engine.reporting.history.list_jobs`), read a page at a time and
written as they come, so memory stays constant however many jobs the range holds, and the counts
are the ones the history page shows (Redis, recounted from PostgreSQL where Redis lost them).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from psycopg import Connection
from redis import Redis

from engine.clock import KST
from engine.keys import Keys
from engine.lifecycle.statuses import JOB_STATUS_LABELS
from engine.reporting import history, retention
from engine.reporting.exports import BOM, guard_cell

#: Korean names of a job's requested channel and kind, as the console and the exports say them.
CHANNEL_LABELS = {"sms": "SMS", "lms": "LMS", "auto": "자동(SMS/LMS)", "kakao": "알림톡"}
KIND_LABELS = {"manual": "수동", "scheduled": "예약", "automatic": "자동"}
ORIGIN_LABELS = {"api": "API", "console": "콘솔"}

HEADER = (
    "작업 ID",
    "발송 일시(KST)",
    "예약 일시(KST)",
    "접수 일시(KST)",
    "유형",
    "채널",
    "발신번호",
    "제목",
    "내용",
    "템플릿 코드",
    "상태",
    "총 건수",
    "성공",
    "실패",
    "전송 중",
    "대기",
    "취소",
    "결과 미수신",
    "차감 포인트",
    "환불 포인트",
    "접수 경로",
    "결과 삭제 예정일(KST)",
)

#: Jobs read per page (the history's largest page).
PAGE = history.MAX_JOBS_PAGE


def filename(now: datetime, job_filter: history.JobFilter) -> str:
    span = ""
    if job_filter.created_from or job_filter.created_to:
        first = f"{job_filter.created_from:%Y%m%d}" if job_filter.created_from else ""
        last = f"{job_filter.created_to:%Y%m%d}" if job_filter.created_to else ""
        span = f"-{first}_{last}"
    return f"balsong-jobs{span}-{now.astimezone(KST):%Y%m%d-%H%M%S}.csv"


def _time(iso: str | None) -> str:
    return datetime.fromisoformat(iso).astimezone(KST).strftime("%Y-%m-%d %H:%M:%S") if iso else ""


def row(job: dict[str, Any], retention_days: int) -> list[str]:
    """One job's cells, guarded, from a `history.list_jobs` entry."""
    counts = job["counts"]
    deletion = retention.deletion_at(datetime.fromisoformat(job["created_at"]), retention_days)
    cells = [
        str(job["id"]),
        _time(job["sent_at"]),
        _time(job["scheduled_at"]),
        _time(job["created_at"]),
        KIND_LABELS.get(job["kind"], job["kind"]),
        CHANNEL_LABELS.get(job["channel"], job["channel"]),
        job["sender"] or "",
        job["title"] or "",
        job["body"] or "",
        job["template_code"] or "",
        JOB_STATUS_LABELS.get(job["status"], job["status"]),
        str(counts["total"]),
        str(counts["delivered"]),
        str(counts["failed"] + counts["expired"]),
        str(counts["in_flight"]),
        str(counts["queued"]),
        str(counts["cancelled"]),
        str(counts["unknown"]),
        job["charged"],
        job["refunded"],
        ORIGIN_LABELS.get(job["origin"], job["origin"]),
        f"{deletion.astimezone(KST):%Y-%m-%d}",
    ]
    return [guard_cell(cell) for cell in cells]


def csv_chunks(
    conn: Connection,
    redis: Redis,
    keys: Keys,
    tenant_id: int,
    job_filter: history.JobFilter,
    retention_days: int,
) -> Iterator[bytes]:
    """The CSV, newest job first, a page of jobs per chunk."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(HEADER)
    yield BOM + out.getvalue().encode()
    cursor: str | None = None
    while True:
        page = history.list_jobs(conn, redis, keys, tenant_id, job_filter, cursor=cursor, limit=PAGE)
        out.seek(0)
        out.truncate()
        for job in page["jobs"]:
            writer.writerow(row(job, retention_days))
        if out.tell():
            yield out.getvalue().encode()
        cursor = page["next_cursor"]
        if cursor is None:
            return
