"""Commands on one job: ``balsong status | cancel | export | recount | resend | resume JOB``.

``status`` reads the API with a tenant's key (what a tenant's script would do); the others are
operator commands that act on PostgreSQL, Redis and RabbitMQ directly, for any tenant's job,
through the same engine functions the API and the console call.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import orjson

from cli.exits import JOB_STATUS_EXITS, CommandError, Exit
from engine.config import get_settings


def api_client(args: argparse.Namespace) -> httpx.Client:
    """An API client authenticated with ``--api-key`` (or ``BALSONG_API_KEY``)."""
    key = args.api_key or os.environ.get("BALSONG_API_KEY")
    if not key:
        raise CommandError("an API key is needed: --api-key KEY or BALSONG_API_KEY", Exit.USAGE)
    return httpx.Client(
        base_url=get_settings().api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def tenant_of(conn: Any, job_id: int) -> int:
    """The id of the tenant a job belongs to; CommandError (not found) if there is no such job."""
    row = conn.execute("SELECT tenant_id FROM jobs WHERE id = %s", (job_id,)).fetchone()
    if row is None:
        raise CommandError(f"no job {job_id}", Exit.NOT_FOUND)
    return int(row[0])


def cmd_status(args: argparse.Namespace) -> int:
    from cli.progress import elapsed_seconds, follow, summary

    timeout = 0.0 if args.no_wait else args.timeout
    # With --json, stdout is the job view alone: no progress is drawn.
    with api_client(args) as client, open(os.devnull, "w") if args.json else nullcontext(sys.stdout) as out:
        job = follow(client, args.job, timeout=timeout, out=out)
    code = JOB_STATUS_EXITS.get(job["status"], Exit.JOB_NOT_FINISHED)
    if args.json:
        sys.stdout.write(orjson.dumps(job, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(summary(job, elapsed_seconds(job)))
    if code is Exit.JOB_PAUSED:
        reason = (job.get("paused") or {}).get("reason") or "paused"
        print(
            f"balsong: job {args.job} is paused ({reason}): resume it with `balsong resume {args.job}`",
            file=sys.stderr,
        )
    elif code is Exit.JOB_NOT_FINISHED:
        print(f"balsong: job {args.job} is still {job['status']}", file=sys.stderr)
    elif code is not Exit.OK:
        print(f"balsong: job {args.job} ended {job['status']}", file=sys.stderr)
    return int(code)


def cmd_cancel(args: argparse.Namespace) -> int:
    from actors.broker import install_broker
    from api.job_actions import perform_cancel
    from engine.accounts import audit
    from engine.runtime import get_runtime

    rt = get_runtime()
    install_broker(rt.settings)
    with rt.pool.connection() as conn:
        tenant_id = tenant_of(conn, args.job)
    result = perform_cancel(tenant_id, args.job, actor=audit.cli_actor())
    if result.already:
        print(f"job {args.job} was already cancelled")
    elif result.finished:
        print(f"job {args.job} cancelled; nothing of it was with a carrier")
    else:
        print(f"job {args.job} cancelled; it ends once the carriers report what they already hold")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from cli.progress import ProgressLine
    from engine.reporting import exports
    from engine.reporting.export_xlsx import xlsx_chunks
    from engine.runtime import get_runtime

    fmt = args.format or ("xlsx" if args.output and args.output.endswith(".xlsx") else "csv")
    target = Path(args.output or exports.filename(args.job, fmt))
    if target.is_dir():
        target = target / exports.filename(args.job, fmt)
    if not target.parent.is_dir():
        raise CommandError(f"cannot write {target}: no directory {target.parent}", Exit.USAGE)
    rt = get_runtime()
    # A half-written file never takes the name: the export goes to a temporary one beside it.
    partial = target.with_name(f".{target.name}.partial")
    progress = ProgressLine(sys.stderr)
    with rt.read_pool.connection() as conn:
        tenant_id = tenant_of(conn, args.job)
        job = exports.find_job(conn, tenant_id, args.job)
    if args.unmasked:
        # Whole phone numbers leave the system: who took them is kept, as for the API's export.
        from engine.accounts import audit

        with rt.pool.connection() as conn:
            audit.record(
                conn,
                tenant_id=tenant_id,
                actor=audit.cli_actor(),
                action=audit.AuditAction.EXPORT_UNMASKED,
                subject=audit.job_subject(args.job),
                details={"format": fmt, "recipients": job.total, "file": str(target)},
            )

    def shown(rows: int) -> None:
        share = rows / max(job.total, 1)
        filled = int(share * 40)
        line = (
            f"[{'█' * filled}{'░' * (40 - filled)}] {share:6.1%}  {rows:,} of {job.total:,} rows  → {target}"
        )
        progress.show(line, force=rows >= job.total)

    try:
        with rt.read_pool.connection() as conn, partial.open("wb") as out:
            chunks = exports.csv_chunks if fmt == "csv" else xlsx_chunks
            for chunk in chunks(conn, job, unmasked=args.unmasked, progress=shown):
                out.write(chunk)
        partial.replace(target)
    finally:
        progress.close()
        partial.unlink(missing_ok=True)
    size = target.stat().st_size
    print(f"job {args.job}: {job.total:,} recipients written to {target} ({size / 1e6:.1f} MB, {fmt})")
    if args.unmasked:
        print(
            "it holds whole phone numbers (personal data): keep it safe, delete it when done", file=sys.stderr
        )
    return 0


def cmd_recount(args: argparse.Namespace) -> int:
    from engine.lifecycle import counters
    from engine.runtime import get_runtime

    rt = get_runtime()
    with rt.pool.connection() as conn:
        row = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (args.job,)).fetchone()
        if row is None:
            raise CommandError(f"no job {args.job}", Exit.NOT_FOUND)
        counts = counters.recount(conn, args.job, row[0])
    before = counters.read(rt.redis, rt.keys, args.job)
    counters.replace(rt.redis, rt.keys, args.job, counts)
    print(f"job {args.job}: counters were {before}, now {counts}")
    return 0


def cmd_resend(args: argparse.Namespace) -> int:
    from actors.broker import install_broker
    from actors.publish import publish_resend
    from engine.accounts import audit
    from engine.intake.job_store import PartitionCache
    from engine.intake.resend import create_resend, validate_reasons
    from engine.runtime import get_runtime

    rt = get_runtime()
    install_broker(rt.settings)
    with rt.pool.connection() as conn:
        stored = create_resend(
            conn,
            tenant_id=tenant_of(conn, args.job),
            source_job_id=args.job,
            reasons=validate_reasons(args.reason),
            now=rt.clock.now(),
            idempotency_key=args.idempotency_key,
            partitions=PartitionCache(),
            settings=rt.settings,
            actor=audit.cli_actor(),
        )
    if stored.created:
        publish_resend(stored.job_id)
    print(
        f"job {stored.job_id} resends the failures of job {args.job}"
        + ("" if stored.created else " (made before)")
    )
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from actors.broker import install_broker
    from actors.publish import publish_batches
    from engine.accounts import audit
    from engine.dispatch.planning import top_up
    from engine.lifecycle.pausing import resume_job
    from engine.runtime import get_runtime

    rt = get_runtime()
    install_broker(rt.settings)
    with rt.pool.connection() as conn:
        with conn.transaction():
            resume_job(conn, args.job)
            audit.record(
                conn,
                tenant_id=tenant_of(conn, args.job),
                actor=audit.cli_actor(),
                action=audit.AuditAction.JOB_RESUME,
                subject=audit.job_subject(args.job),
            )
        publish_batches(top_up(conn, args.job, rt.settings.batch_window))
    print(f"job {args.job} resumed")
    return 0


def register(sub: Any) -> None:
    """Add the job commands to the top-level parser's ``sub``-commands."""
    status = sub.add_parser(
        "status",
        help="follow a job with a progress bar until it finishes (exit 0 only if it completed)",
        description="Follow a job through the API until it finishes or is paused, then print its summary. "
        "Exit status: 0 completed, 10 partially_failed, 11 failed, 12 cancelled, 13 missed, "
        "14 paused (at once), 15 not finished within --timeout.",
    )
    status.add_argument("job", type=int, help="the job's id")
    status.add_argument(
        "--api-key", help="an API key of the job's tenant with the read scope (default: $BALSONG_API_KEY)"
    )
    status.add_argument(
        "--timeout",
        type=float,
        default=24 * 3600,
        metavar="SECONDS",
        help="stop waiting after this many seconds (default: 86400)",
    )
    status.add_argument("--no-wait", action="store_true", help="show the job as it is now and exit at once")
    status.add_argument(
        "--json", action="store_true", help="print the job view as JSON (no progress bar), for scripts"
    )
    status.set_defaults(handler=cmd_status)

    cancel = sub.add_parser(
        "cancel", help="cancel a job: nothing more is submitted; what a carrier holds is still reported"
    )
    cancel.add_argument("job", type=int, help="the job's id")
    cancel.set_defaults(handler=cmd_cancel)

    export = sub.add_parser(
        "export",
        help="write a job's recipients and outcomes to a CSV or XLSX file, with a progress bar",
        description="Reads PostgreSQL (its read replica, if configured) directly: an operator command, "
        "for any tenant's job. Phone numbers are masked (010-****-5678) unless --unmasked.",
    )
    export.add_argument("job", type=int, help="the job's id")
    export.add_argument(
        "--format", choices=("csv", "xlsx"), help="file format (default: from -o's extension, else csv)"
    )
    export.add_argument("--unmasked", action="store_true", help="whole phone numbers (personal data)")
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="file (or directory) to write (default: balsong-job-JOB-recipients.FORMAT)",
    )
    export.set_defaults(handler=cmd_export)

    recount = sub.add_parser("recount", help="recompute a job's live counters from PostgreSQL")
    recount.add_argument("job", type=int, help="the job's id")
    recount.set_defaults(handler=cmd_recount)

    resend = sub.add_parser("resend", help="a new job for a finished job's failed recipients (prints its id)")
    resend.add_argument("job", type=int, help="the finished job's id")
    resend.add_argument(
        "--reason", action="append", metavar="CODE", help="only failures with this reason code (repeatable)"
    )
    resend.add_argument("--idempotency-key", metavar="KEY", help="the same key again makes no second job")
    resend.set_defaults(handler=cmd_resend)

    resume = sub.add_parser("resume", help="resume a job paused for its failure ratio")
    resume.add_argument("job", type=int, help="the paused job's id")
    resume.set_defaults(handler=cmd_resume)
