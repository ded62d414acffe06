"""The times a recipient row carries, and the one rule between them.

A recipient has ``first_attempt_at`` (its first hand-over to a carrier), ``submitted_at`` (the
carrier accepted its current attempt, by our clock) and ``completed_at`` (its final result). The
carrier reports the result with *its* clock (``resultDate``), which may be a few milliseconds to
seconds behind ours: taken as it comes, a message could finish before it was submitted (seen:
completed 20:02:42.530, submitted 20:02:42.532). So:

    completed_at = greatest(the result's time, submitted_at)

for every writer of ``completed_at`` on a row that may have been submitted (the flusher's report
SQL, the report deadline). A row never submitted (refused at intake or at submission, cancelled)
has no ``submitted_at``, and ``greatest`` ignores a NULL: it takes the result's time as it is.

Imports nothing: the rule is an SQL expression for the statements that write the rows.
"""

from __future__ import annotations


def completed_at_sql(result_at: str, row: str = "r") -> str:
    """The SQL expression for a row's ``completed_at`` given the result's time ``result_at`` (an
    SQL expression, e.g. ``u.result_at`` or ``%(at)s``); ``row`` is the recipients table's alias."""
    return f"greatest({result_at}, {row}.submitted_at)"
