"""`balsong stats backfill`: add the jobs that finished before the send statistics existed (see
engine.lifecycle.job_stats; every job finished since is added when it finishes)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.config import get_settings


def cmd_backfill(args: argparse.Namespace) -> int:
    # Imported here: the engine imports prometheus_client, which the process commands set up
    # before anything imports it (cli.multiprocess).
    import psycopg

    from engine.lifecycle.job_stats import add_uncounted_jobs

    with psycopg.connect(get_settings().database_url, autocommit=True) as conn:
        added = add_uncounted_jobs(conn, page=args.page)
    print(f"{added} finished job(s) added to the send statistics")
    return 0


def register(sub: Any) -> None:
    """Add ``balsong stats`` to the top-level parser's subcommands."""
    stats = sub.add_parser("stats", help="send statistics (counters per tenant, hour and channel)")
    commands = stats.add_subparsers(dest="stats_command", required=True)
    backfill = commands.add_parser(
        "backfill", help="add finished jobs not yet counted (those finished before the statistics existed)"
    )
    backfill.add_argument("--page", type=int, default=500, help="jobs per transaction")
    backfill.set_defaults(handler=cmd_backfill)
