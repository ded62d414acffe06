"""Our stable per-recipient reference, sent to carriers and echoed back in their results.

``"<job id>-<seq>"``: unique per recipient, short (well under the providers' 100-character
limit for grouping keys), and enough to find the recipient row again.
"""

from __future__ import annotations


def make_reference(job_id: int, seq: int) -> str:
    return f"{job_id}-{seq}"


def parse_reference(reference: str) -> tuple[int, int] | None:
    """(job id, seq) of a reference, or None if it is not one of ours."""
    job, sep, seq = reference.partition("-")
    if not sep or not job.isdigit() or not seq.isdigit():
        return None
    return int(job), int(seq)
