"""Pages kept in step with the code: the one way a generator checks or rewrites its page
(`engine.config_doc`, `api.reference_doc`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def check_or_write(path: Path, updated: Callable[[str], str], command: str, *, check: bool) -> int:
    """Regenerate ``path``'s generated parts with ``updated``; with ``check``, exit status 1 (and
    say to run ``command --write``) if the page on disk differs, else write the fresh page."""
    page = path.read_text(encoding="utf-8")
    fresh = updated(page)
    if check:
        if fresh != page:
            print(f"{path} is out of date: run {command} --write", file=sys.stderr)
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0
