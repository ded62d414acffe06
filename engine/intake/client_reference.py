"""The caller's own reference (``reference``) on a job or a recipient: an order or member number,
kept as given and handed back in the job and recipient views, the exports and callbacks.

One rule for every place that reads one (a recipient, a job, a filter of the history or of a
job's recipients): a string of 1 to `MAX_LENGTH` characters with no control character. Anything
else is the request's error, like a control character in a member id: no upstream system sends
an empty or an over-long id on purpose, and a reference cut short or dropped would no longer
find its record.
"""

from __future__ import annotations

from typing import Any

from engine.errors import ValidationError
from engine.inputs import check_line

__all__ = ["MAX_LENGTH", "check_reference"]

#: Longest reference kept, in characters (as a member id).
MAX_LENGTH = 100


def check_reference(value: Any, field: str) -> str:
    """``value`` if it is a reference by the rule above; else a ValidationError naming ``field``.

    Cheap for the usual value (runs once per recipient that has one): a type test, a length and
    one ``str.isprintable``."""
    if type(value) is not str:
        raise ValidationError(field, "must be a string")
    if not 0 < len(value) <= MAX_LENGTH:
        raise ValidationError(
            field,
            "must not be empty" if not value else f"longer than {MAX_LENGTH} characters",
        )
    return value if value.isprintable() else check_line(value, field)
