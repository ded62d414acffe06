"""Messages delivered to members, written straight into PostgreSQL, for attribution tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import Connection


def seed_message(
    conn: Connection,
    tenant_id: int,
    member_id: str,
    delivered_at: datetime,
    *,
    status: str = "delivered",
    channel: str = "sms",
    phone: str = "01012345678",
) -> tuple[int, int]:
    """A finished one-recipient job whose message to ``member_id`` ended ``status`` at
    ``delivered_at``; its (job id, seq)."""
    created = delivered_at - timedelta(minutes=1)
    with conn.transaction():
        conn.execute("SELECT ensure_recipients_partition(%s)", (created.date(),))
        job_id = _job(conn, tenant_id, created, channel, total=1)
        conn.execute(
            """
            INSERT INTO recipients (job_created_at, job_id, seq, phone, member_id, channel, status,
                                    submitted_at, completed_at)
            VALUES (%s, %s, 0, %s, %s, %s, %s, %s, %s)
            """,
            (created, job_id, phone, member_id, channel, status, created, delivered_at),
        )
    return job_id, 0


def seed_job_to_members(conn: Connection, tenant_id: int, members: list[str], delivered_at: datetime) -> int:
    """A finished SMS job delivered to each of ``members`` (seq in list order) at ``delivered_at``."""
    created = delivered_at - timedelta(minutes=1)
    with conn.transaction():
        conn.execute("SELECT ensure_recipients_partition(%s)", (created.date(),))
        job_id = _job(conn, tenant_id, created, "sms", total=len(members))
        for seq, member in enumerate(members):
            conn.execute(
                """
                INSERT INTO recipients (job_created_at, job_id, seq, phone, member_id, channel, status,
                                        submitted_at, completed_at)
                VALUES (%s, %s, %s, %s, %s, 'sms', 'delivered', %s, %s)
                """,
                (created, job_id, seq, f"010{seq:08d}", member, created, delivered_at),
            )
    return job_id


def seed_kakao_fallback(
    conn: Connection, tenant_id: int, member_id: str, delivered_at: datetime
) -> tuple[int, int]:
    """A one-recipient KakaoTalk job whose message failed and went by SMS, delivered at
    ``delivered_at``: the Kakao row (seq 0, status fallback) and its fallback (seq 1); (job id, 1)."""
    created = delivered_at - timedelta(minutes=5)
    with conn.transaction():
        conn.execute("SELECT ensure_recipients_partition(%s)", (created.date(),))
        job_id = _job(conn, tenant_id, created, "kakao", total=1)
        conn.execute(
            """
            INSERT INTO recipients (job_created_at, job_id, seq, phone, member_id, channel, status,
                                    reason_code, submitted_at, completed_at, fallback_of)
            VALUES (%(c)s, %(j)s, 0, '01012345678', %(m)s, 'kakao', 'fallback', 'carrier_3019', %(c)s,
                    %(c)s, NULL),
                   (%(c)s, %(j)s, 1, '01012345678', %(m)s, 'sms', 'delivered', NULL, %(c)s, %(d)s, 0)
            """,
            {"c": created, "j": job_id, "m": member_id, "d": delivered_at},
        )
    return job_id, 1


def _job(conn: Connection, tenant_id: int, created: datetime, channel: str, total: int) -> int:
    row = conn.execute(
        """
        INSERT INTO jobs (tenant_id, created_at, status, requested_channel, sender, body, total,
                          sms_count, lms_count, kakao_count, invalid_count, planned_at, first_sent_at,
                          completed_at)
        VALUES (%s, %s, 'completed', %s, '0212345678', '세일 안내', %s, %s, 0, %s, 0, %s, %s, %s)
        RETURNING id
        """,
        (
            tenant_id,
            created,
            channel,
            total,
            total if channel == "sms" else 0,
            total if channel == "kakao" else 0,
            created,
            created,
            created,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])
