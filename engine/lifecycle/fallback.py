"""SMS/LMS fallback for KakaoTalk recipients whose Kakao message failed finally.

The Kakao row gets status ``fallback`` (its reason keeps the Kakao outcome), and a second row is
made for the fallback message at ``seq = job total + its seq`` (``fallback_of`` links it back):
one deterministic row per recipient, so applying the same failure twice makes no second one.
Each fallback row's channel follows the fallback's own rules (``auto``: SMS up to 90 bytes, else
LMS); a text that cannot go (too long, unencodable) fails that row with its reason. The new rows
go into batches the outbox publishes like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from psycopg import Connection

from engine.callbacks.outbox import RecipientEvent, record_events
from engine.intake.channels import ContentTooLong, choose_channel
from engine.intake.encoding import UnencodableText, encoded_length
from engine.intake.template import Template


@dataclass(slots=True)
class FallbackResult:
    #: Fallback rows queued for sending.
    queued: int = 0
    #: Fallback rows that could not go, by reason code: (count, text).
    failed: dict[str, tuple[int, str]] = field(default_factory=dict)


def create_fallbacks(
    conn: Connection, job_id: int, created_at: datetime, seqs: Sequence[int], now: datetime
) -> FallbackResult:
    """Make the fallback rows and batches for ``seqs`` (Kakao rows now in status ``fallback``);
    ``now`` is when a fallback that cannot go failed."""
    result = FallbackResult()
    job = conn.execute(
        "SELECT total, variables, fallback_channel, fallback_body, fallback_title FROM jobs WHERE id = %s",
        (job_id,),
    ).fetchone()
    if job is None or job[2] is None or not seqs:
        return result
    total, names, requested, body, title = job
    template = Template.parse(body)
    title_bytes = encoded_length(title) if title else 0
    rows = conn.execute(
        'SELECT seq, phone, member_id, reference, "values" FROM recipients'
        " WHERE job_id = %s AND job_created_at = %s AND seq = ANY(%s) AND status = 'fallback'",
        (job_id, created_at, list(seqs)),
    ).fetchall()
    new_rows = []
    by_channel: dict[str, list[int]] = {}
    for seq, phone, member_id, reference, values in rows:
        filled = template.values_from(dict(zip(names, values or (), strict=False)))
        status, channel, code, text = "queued", None, None, None
        try:
            channel = choose_channel(requested, encoded_length(template.render(filled)), title_bytes).value
        except (UnencodableText, ContentTooLong) as exc:
            code = "unencodable_text" if isinstance(exc, UnencodableText) else "content_too_long"
            status, text = "failed", f"fallback: {exc}"
            count, _ = result.failed.get(code, (0, text))
            result.failed[code] = (count + 1, text)
        new_seq = total + seq
        new_rows.append(
            (
                created_at,
                job_id,
                new_seq,
                phone,
                member_id,
                reference,
                list(filled) or None,
                channel,
                status,
                code,
                text,
                seq,
            )
        )
        if channel is not None:
            by_channel.setdefault(channel, []).append(new_seq)
    failed_now: list[RecipientEvent] = []
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO recipients (job_created_at, job_id, seq, phone, member_id, reference, "values",
                                    channel, status, reason_code, reason_text, fallback_of)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
            RETURNING seq, status, reason_code, reason_text
            """,
            new_rows,
            returning=True,
        )
        # A fallback that cannot go ends here: its event, for the rows this call made.
        while True:
            failed_now.extend(
                RecipientEvent(seq, 0, status, code, text, now)
                for seq, status, code, text in cur.fetchall()
                if status == "failed"
            )
            if not cur.nextset():
                break
    record_events(conn, job_id, failed_now)
    for channel, channel_seqs in by_channel.items():
        ordered = sorted(channel_seqs)
        conn.execute(
            """
            INSERT INTO batches (job_id, seq, channel, first_seq, next_seq, last_seq, seqs)
            SELECT %(job)s, coalesce(max(seq), -1) + 1, %(channel)s, %(first)s, %(first)s, %(last)s, %(seqs)s
            FROM batches WHERE job_id = %(job)s
            """,
            {"job": job_id, "channel": channel, "first": ordered[0], "last": ordered[-1], "seqs": ordered},
        )
        result.queued += len(ordered)
    return result
