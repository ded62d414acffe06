"""``BALSONG_*`` environment variables that are no setting: a misspelt setting, reported.

A variable balsong does not read is otherwise ignored without a word, and the setting it meant
stays at its default (``BALSONG_DATABSE_URL``). Every process logs each one at start-up, once, with
the setting it most resembles: the CLI (hence the scheduler and the callback dispatcher), each API
process, each worker process (`report_unknown_settings`).
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from dataclasses import fields
from functools import cache
from typing import NamedTuple

from engine.config import Settings

#: ``BALSONG_*`` variables that are not settings yet are known, and are not reported as unknown:
#: what reads each.
OTHER_VARIABLES = {
    "BALSONG_API_KEY": "the CLI's API key (balsong status, resend), instead of --api-key",
    "BALSONG_DATABASE_DIRECT_URL": "deploy/k8s: the Secret's direct PostgreSQL URL, which the scheduler"
    " takes as its BALSONG_DATABASE_URL (every pod sees the Secret's keys)",
    "BALSONG_TEST_ADMIN_DATABASE_URL": "tests: the PostgreSQL server test databases are made on",
    "BALSONG_TEST_REDIS_URL": "tests: the Redis server",
    "BALSONG_TEST_AMQP_HOST": "tests: the RabbitMQ server (host:port)",
    "BALSONG_FAULT_TABLE": "the fault suite: the file its table rows go to (bench/fault_suite.py)",
    "BALSONG_FAULT_FINISH_TIMEOUT": "the fault suite: seconds a job may take to finish",
}

log = logging.getLogger("balsong.config")


class UnknownSetting(NamedTuple):
    """A ``BALSONG_*`` environment variable that is no setting (`unknown_settings`)."""

    #: The variable as set, e.g. ``BALSONG_DATABSE_URL``.
    name: str
    #: The setting's variable it most resembles (``BALSONG_DATABASE_URL``), or None.
    closest: str | None

    def __str__(self) -> str:
        hint = f" (did you mean {self.closest}?)" if self.closest else ""
        return f"{self.name} is not a balsong setting and is ignored{hint}"


def setting_variables() -> list[str]:
    """The environment variable of every setting, in the order of `Settings`' fields."""
    return ["BALSONG_" + field.name.upper() for field in fields(Settings)]


def unknown_settings(environ: Mapping[str, str] | None = None) -> list[UnknownSetting]:
    """The ``BALSONG_*`` variables of ``environ`` (the process's environment by default) that are
    neither a setting nor one of `OTHER_VARIABLES`, each with the setting it most resembles: a
    misspelt setting is otherwise silently left at its default.

    Not refused, in production either: variables come from shared ConfigMaps and Secrets that may
    carry keys of other versions (a rollback to a release without a newer setting must start), and
    the misspellings that would do harm are refused anyway: a misspelt secret or carrier URL leaves
    it at its development value (`Settings.check_secrets`), a misspelt server URL at a loopback
    address where a production container reaches nothing."""
    env = os.environ if environ is None else environ
    known = setting_variables()
    found = []
    for name in sorted(env):
        if not name.startswith("BALSONG_") or name in known or name in OTHER_VARIABLES:
            continue
        closest = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        found.append(UnknownSetting(name, closest[0] if closest else None))
    return found


@cache
def report_unknown_settings() -> list[UnknownSetting]:
    """Log a warning for each `unknown_settings` of this process's environment, once per process
    (however often it is called), and return them. Every process calls it once its logging is set
    up: the CLI (hence the scheduler and callbacks dispatcher), each API and worker process."""
    unknown = unknown_settings()
    for setting in unknown:
        log.warning(str(setting), extra={"variable": setting.name, "closest": setting.closest})
    return unknown
