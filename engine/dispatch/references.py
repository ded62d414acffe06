"""Our stable per-recipient reference, sent to carriers and echoed back in their results.

``"<job id>-<seq>"`` for a recipient's first attempt, ``"<job id>-<seq>-<attempt>"`` when the
carrier reported a passing failure ("phone off") and it is sent again: unique per attempt, short
(well under the providers' 100-character limit for grouping keys), and enough to find the
recipient row — and to ignore a late report about an earlier attempt.

A reference comes back from outside (a carrier's report, a webhook anyone may forge), so parsing
is strict: ASCII digits only, and every part inside the column it addresses (a job id is a
PostgreSQL ``bigint``, a seq and an attempt an ``integer``). A reference out of range is not one
we could have made; letting it through once made a whole webhook call fail (int64 overflow).
"""

from __future__ import annotations

#: Largest job id (``jobs.id`` is a bigint).
MAX_JOB_ID = 2**63 - 1
#: Largest seq and attempt (``recipients.seq`` / ``attempt`` are integers).
MAX_SEQ = 2**31 - 1
#: Longest text a reference of ours can be: 19 + 1 + 10 + 1 + 10 characters.
MAX_REFERENCE_LENGTH = 41


def make_reference(job_id: int, seq: int, attempt: int = 0) -> str:
    return f"{job_id}-{seq}" if attempt == 0 else f"{job_id}-{seq}-{attempt}"


def parse_reference(reference: object) -> tuple[int, int, int] | None:
    """(job id, seq, attempt) of a reference, or None if it is not one of ours (not a string,
    not our shape, or a number outside what PostgreSQL holds)."""
    if type(reference) is not str or len(reference) > MAX_REFERENCE_LENGTH or not reference.isascii():
        return None
    parts = reference.split("-")
    if len(parts) not in (2, 3) or not all(part.isdigit() for part in parts):
        return None
    job_id, seq = int(parts[0]), int(parts[1])
    attempt = int(parts[2]) if len(parts) == 3 else 0
    if not (0 < job_id <= MAX_JOB_ID and seq <= MAX_SEQ and attempt <= MAX_SEQ):
        return None
    return job_id, seq, attempt


def looks_like_ours(reference: object) -> bool:
    """True for text of our shape (digits-digits[-digits]) whatever its numbers: such a reference
    that does not parse is malformed (set aside), not merely someone else's (ignored)."""
    if type(reference) is not str or not reference.isascii():
        return False
    parts = reference.split("-")
    return len(parts) in (2, 3) and all(part.isdigit() for part in parts)
