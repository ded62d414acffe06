"""Our stable per-recipient reference, sent to carriers and echoed back in their results.

``"<job id>-<seq>"`` for a recipient's first attempt, ``"<job id>-<seq>-<attempt>"`` when the
carrier reported a passing failure ("phone off") and it is sent again: unique per attempt, short
(well under the providers' 100-character limit for grouping keys), and enough to find the
recipient row — and to ignore a late report about an earlier attempt.
"""

from __future__ import annotations


def make_reference(job_id: int, seq: int, attempt: int = 0) -> str:
    return f"{job_id}-{seq}" if attempt == 0 else f"{job_id}-{seq}-{attempt}"


def parse_reference(reference: str) -> tuple[int, int, int] | None:
    """(job id, seq, attempt) of a reference, or None if it is not one of ours."""
    parts = reference.split("-")
    if len(parts) not in (2, 3) or not all(part.isdigit() for part in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) == 3 else 0
