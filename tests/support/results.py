"""A finished KakaoTalk job with every kind of outcome, written straight into PostgreSQL, so
export and statement tests know exactly what each recipient's row must say."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import Connection

#: When the seeded messages were handed to the carrier and finished (UTC); KST is 9 hours ahead.
SUBMITTED = datetime(2026, 11, 23, 3, 0, 0, tzinfo=UTC)
COMPLETED = datetime(2026, 11, 23, 3, 0, 5, tzinfo=UTC)
#: The same moments as the exports show them.
SUBMITTED_KST = "2026-11-23 12:00:00"
COMPLETED_KST = "2026-11-23 12:00:05"

FORMULA_MEMBER = '=HYPERLINK("http://evil.example","click")'
TRICKY_MEMBER = '콤마, "따옴표"\n줄바꿈'


@dataclass(frozen=True)
class Seeded:
    """One recipient as seeded: (seq, phone, member id, channel, status, reason code, reason)."""

    seq: int
    phone: str
    member_id: str | None
    channel: str | None
    status: str
    reason_code: str | None = None
    reason: str | None = None


#: Six recipients: delivered; Kakao failed; two Kakao failures handed to SMS/LMS (one delivered,
#: one failed there); a number refused at intake; a valid number refused at intake.
RECIPIENTS = (
    Seeded(0, "01012345678", "M0", "kakao", "delivered"),
    Seeded(1, "01023456789", FORMULA_MEMBER, "kakao", "failed", "carrier_3019", "카카오톡 사용자가 아님"),
    Seeded(2, "0212345678", "+82-10", "kakao", "fallback", "carrier_3019", "카카오톡 사용자가 아님"),
    Seeded(3, "050412345678", TRICKY_MEMBER, "kakao", "fallback", "carrier_3019", "카카오톡 사용자가 아님"),
    Seeded(4, "not-a-phone", "@SUM(A1)", None, "failed", "invalid_character", "the letter 'n' is no digit"),
    Seeded(5, "01098765432", "-5", None, "failed", "missing_variable", "variable 'name' is missing"),
)
#: The fallback messages of seqs 2 and 3, at seq = total + seq.
FALLBACKS = (
    Seeded(8, "0212345678", "+82-10", "sms", "delivered"),
    Seeded(9, "050412345678", TRICKY_MEMBER, "lms", "failed", "carrier_23", "수신 거부"),
)


def seed_job(conn: Connection, tenant_id: int, created_at: datetime | None = None) -> int:
    """Store the finished job with :data:`RECIPIENTS` and :data:`FALLBACKS`; its id."""
    created = created_at or datetime.now(UTC)
    with conn.transaction():
        conn.execute("SELECT ensure_recipients_partition(%s)", (created.date(),))
        row = conn.execute(
            """
            INSERT INTO jobs (tenant_id, created_at, status, requested_channel, sender, body, total,
                              sms_count, lms_count, kakao_count, invalid_count, kind, planned_at,
                              first_sent_at, completed_at, template_code)
            VALUES (%s, %s, 'partially_failed', 'kakao', '0212345678', '주문 안내', %s, 0, 0, 4, 2,
                    'automatic', %s, %s, %s, 'ORDER_SHIPPED')
            RETURNING id
            """,
            (tenant_id, created, len(RECIPIENTS), created, SUBMITTED, COMPLETED),
        ).fetchone()
        assert row is not None
        job_id = int(row[0])
        for r in (*RECIPIENTS, *FALLBACKS):
            refused = r.channel is None
            conn.execute(
                """
                INSERT INTO recipients (job_created_at, job_id, seq, phone, member_id, channel, status,
                                        reason_code, reason_text, submitted_at, completed_at, fallback_of)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    created,
                    job_id,
                    r.seq,
                    r.phone,
                    r.member_id,
                    r.channel,
                    r.status,
                    r.reason_code,
                    r.reason,
                    None if refused else SUBMITTED,
                    COMPLETED,
                    r.seq - len(RECIPIENTS) if r.seq >= len(RECIPIENTS) else None,
                ),
            )
    return job_id
