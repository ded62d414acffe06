"""The ``balsong`` command's exit statuses, by class of outcome, and the error a command raises
for an expected problem.

Scripts branch on these numbers, so they are fixed: a new class gets a new number, an old number
never changes meaning. `cli.main` maps every expected error (the engine's, the services', the
API's answers) to one of them and a one-line message on stderr; anything else is a bug and keeps
its traceback (exit 1).
"""

from __future__ import annotations

from enum import IntEnum

from engine.lifecycle.statuses import JobStatus


class Exit(IntEnum):
    """Why ``balsong`` stopped."""

    #: Done (``balsong status``: the job completed).
    OK = 0
    #: An unexpected error: a bug, reported with its traceback; or (run, demo) one of the
    #: stack's processes died, its log named.
    INTERNAL = 1
    #: A bad command line or argument (argparse's own code too).
    USAGE = 2
    #: No such tenant, job, key or sender.
    NOT_FOUND = 3
    #: A service is unreachable: PostgreSQL, Redis, RabbitMQ or the API. Try again once it is up.
    UNAVAILABLE = 4
    #: Refused: the state of things does not allow it (a finished job cancelled, a name taken,
    #: a port in use, a key without the scope, too little balance).
    REFUSED = 5
    #: The configuration is not usable: secrets missing in production, the schema not migrated.
    CONFIG = 6
    #: ``balsong status``: the job ended ``partially_failed``.
    JOB_PARTIALLY_FAILED = 10
    #: ``balsong status``: the job ended ``failed`` (every recipient failed or expired).
    JOB_FAILED = 11
    #: ``balsong status``: the job was ``cancelled``.
    JOB_CANCELLED = 12
    #: ``balsong status``: the reservation was ``missed`` (found due too late; never sent).
    JOB_MISSED = 13
    #: ``balsong status``: the job is ``paused`` for its failure ratio (`balsong resume JOB`).
    JOB_PAUSED = 14
    #: ``balsong status``: the job had not finished when ``--timeout`` ran out (or ``--no-wait``).
    JOB_NOT_FINISHED = 15
    #: Interrupted (Ctrl-C), as shells report SIGINT.
    INTERRUPTED = 130


#: What ``balsong status`` exits with for a job that stopped in each status.
JOB_STATUS_EXITS: dict[str, Exit] = {
    JobStatus.COMPLETED: Exit.OK,
    JobStatus.PARTIALLY_FAILED: Exit.JOB_PARTIALLY_FAILED,
    JobStatus.FAILED: Exit.JOB_FAILED,
    JobStatus.CANCELLED: Exit.JOB_CANCELLED,
    JobStatus.MISSED: Exit.JOB_MISSED,
    JobStatus.PAUSED: Exit.JOB_PAUSED,
}

_MEANINGS: dict[Exit, str] = {
    Exit.OK: "done (status: the job completed)",
    Exit.INTERNAL: "unexpected error: a bug (traceback printed), or a stack process died (log named)",
    Exit.USAGE: "bad command line or argument",
    Exit.NOT_FOUND: "no such tenant, job, key or sender",
    Exit.UNAVAILABLE: "a service is unreachable (PostgreSQL, Redis, RabbitMQ, the API)",
    Exit.REFUSED: "refused or conflicting (job state, name taken, port in use, scope, balance)",
    Exit.CONFIG: "configuration unusable (secrets missing, database not migrated)",
    Exit.JOB_PARTIALLY_FAILED: "status: the job ended partially_failed",
    Exit.JOB_FAILED: "status: the job ended failed",
    Exit.JOB_CANCELLED: "status: the job was cancelled",
    Exit.JOB_MISSED: "status: the reservation was missed",
    Exit.JOB_PAUSED: "status: the job is paused (balsong resume JOB)",
    Exit.JOB_NOT_FINISHED: "status: not finished within --timeout (or --no-wait)",
    Exit.INTERRUPTED: "interrupted (Ctrl-C)",
}


def exit_table() -> str:
    """The exit statuses and their meanings, one a line (``balsong --help``'s epilog)."""
    return "\n".join(f"  {int(code):>3}  {_MEANINGS[code]}" for code in Exit)


class CommandError(Exception):
    """An expected problem a command reports in one line, and the status it exits with."""

    def __init__(self, message: str, code: Exit) -> None:
        self.code = code
        super().__init__(message)
