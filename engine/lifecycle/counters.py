"""A job's live counters in Redis, and their recount from PostgreSQL (the truth).

Fields of the ``{job:ID}:counts`` hash:

- ``total``: recipients stored for the job (after removing duplicates);
- ``queued``: not yet accepted or refused by a carrier;
- ``sent``: accepted by a carrier (ever);
- ``in_flight``: accepted, final result not yet known;
- ``delivered`` / ``failed``: final results (``failed`` includes recipients refused at intake);
- ``expired``: final, retried until the channel's deadline without success;
- ``cancelled``: final, never submitted: the job was cancelled (or its reservation missed);
- ``unknown``: final, accepted by a carrier but no result came by the channel's report deadline
  (reason ``no_report``; not a failure, and not refunded);
- ``fallbacks``: KakaoTalk recipients handed to SMS/LMS (their fallback message is then counted
  in the fields above, in their place: fallbacks never add to ``total``);
- ``reason:<code>``: failed recipients by reason code, ``text:<code>``: a reason text for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from psycopg import Connection
from redis import Redis

from engine.keys import Keys
from engine.lifecycle.statuses import RecipientStatus
from engine.lifecycle.transitions import STATUSES_WITH_REASON, Standing, standing

COUNT_FIELDS = (
    "total",
    "queued",
    "sent",
    "in_flight",
    "delivered",
    "failed",
    "expired",
    "cancelled",
    "fallbacks",
    "unknown",
)

# Writes the counters only if the hash does not exist yet (a recount or an earlier plan won).
_INIT_IF_ABSENT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


@dataclass(slots=True)
class JobCounts:
    total: int = 0
    queued: int = 0
    sent: int = 0
    in_flight: int = 0
    delivered: int = 0
    failed: int = 0
    expired: int = 0
    cancelled: int = 0
    fallbacks: int = 0
    unknown: int = 0
    #: Failed (and expired) recipients by reason code.
    reasons: dict[str, int] = field(default_factory=dict)
    #: A human text for each reason code.
    reason_texts: dict[str, str] = field(default_factory=dict)

    def as_hash(self) -> dict[str, str | int]:
        mapping: dict[str, str | int] = {name: getattr(self, name) for name in COUNT_FIELDS}
        for code, count in self.reasons.items():
            mapping[f"reason:{code}"] = count
        for code, text in self.reason_texts.items():
            mapping[f"text:{code}"] = text
        return mapping

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> JobCounts:
        counts = cls()
        for key, value in raw.items():
            name = key.decode()
            if name.startswith("reason:"):
                counts.reasons[name[7:]] = int(value)
            elif name.startswith("text:"):
                counts.reason_texts[name[5:]] = value.decode()
            elif name in COUNT_FIELDS:
                setattr(counts, name, int(value))
        return counts


def read(redis: Redis, keys: Keys, job_id: int) -> JobCounts | None:
    raw = redis.hgetall(keys.job_counts(job_id))
    return JobCounts.from_hash(raw) if raw else None  # type: ignore[arg-type]


def initialise(redis: Redis, keys: Keys, job_id: int, counts: JobCounts) -> bool:
    """Set the counters unless they exist already; True if this call set them."""
    args: list[str | int] = []
    for name, value in counts.as_hash().items():
        args.extend((name, value))
    return bool(redis.eval(_INIT_IF_ABSENT, 1, keys.job_counts(job_id), *args))


def replace(redis: Redis, keys: Keys, job_id: int, counts: JobCounts) -> None:
    """Overwrite the counters (after a recount)."""
    key = keys.job_counts(job_id)
    pipe = redis.pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(key, mapping=counts.as_hash())  # type: ignore[arg-type]
    pipe.execute()


def recount(conn: Connection, job_id: int, created_at: datetime) -> JobCounts:
    """The job's counters as PostgreSQL's recipient rows say (the truth, up to the flusher's lag):
    the sum of what each row stands for (`engine.lifecycle.transitions.standing`)."""
    counts = JobCounts()
    rows = conn.execute(
        """
        SELECT status, submitted_at IS NOT NULL, fallback_of IS NOT NULL, reason_code, min(reason_text),
               count(*)
        FROM recipients
        WHERE job_id = %s AND job_created_at = %s
        GROUP BY 1, 2, 3, 4
        """,
        (job_id, created_at),
    ).fetchall()
    for status, submitted, fallback_row, reason_code, reason_text, count in rows:
        row = Standing(RecipientStatus(status), submitted, fallback_row)
        for name, value in standing(row).items():
            setattr(counts, name, getattr(counts, name) + value * count)
        if row.status in STATUSES_WITH_REASON:
            code = reason_code or "unknown"
            counts.reasons[code] = counts.reasons.get(code, 0) + count
            if reason_text:
                counts.reason_texts[code] = reason_text
    return counts
