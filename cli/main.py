"""``balsong``: the command line for operators, the Procfile and the demo."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

import httpx

from cli import account, callbacks, operators
from engine.config import MissingSecrets, Settings, get_settings
from engine.unknown_settings import report_unknown_settings


def _connect():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(get_settings().database_url, autocommit=True)


def _process_settings() -> Settings:
    """The settings of a long-running process (api, worker, scheduler). In production without
    its secrets it does not start: exit status 1, every missing secret named on stderr."""
    settings = get_settings()
    try:
        settings.check_secrets()
    except MissingSecrets as exc:
        raise SystemExit(f"balsong: cannot start: {exc}") from None
    return settings


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from engine.db import upgrade

    upgrade()
    print("database is at the latest schema")
    return 0


def cmd_tenant_create(args: argparse.Namespace) -> int:
    from engine.accounts.tenants import create_api_key, create_tenant

    with _connect() as conn, conn.transaction():
        tenant_id = create_tenant(conn, args.name)
        key = create_api_key(conn, tenant_id, args.scopes)
    print(f"tenant {args.name} (id {tenant_id}) created; its API key (shown once):", file=sys.stderr)
    print(key)
    return 0


def cmd_sender_add(args: argparse.Namespace) -> int:
    from engine.accounts import audit
    from engine.accounts.tenants import add_sender, tenant_id_by_name

    with _connect() as conn, conn.transaction():
        tenant_id = tenant_id_by_name(conn, args.tenant)
        number = add_sender(conn, tenant_id, args.number)
        audit.record(
            conn,
            tenant_id=tenant_id,
            actor=audit.cli_actor(),
            action=audit.AuditAction.SENDER_ADD,
            subject=audit.sender_subject(number),
        )
    print(f"sender {number} registered for {args.tenant}")
    return 0


def cmd_rate_limit(args: argparse.Namespace) -> int:
    from engine.accounts.tenants import tenant_id_by_name
    from engine.dispatch.rate_policy import clear_rate_limit, list_rate_limits, set_rate_limit
    from engine.intake.phone import normalize_sender

    with _connect() as conn:
        tenant_id = tenant_id_by_name(conn, args.tenant)
        sender = normalize_sender(args.sender) if getattr(args, "sender", None) else None
        if args.rate_command == "set":
            set_rate_limit(conn, tenant_id, args.channel, args.per_second, sender)
        elif args.rate_command == "clear" and not clear_rate_limit(conn, tenant_id, args.channel, sender):
            print("no such cap", file=sys.stderr)
            return 1
        for limit_sender, channel, per_second in list_rate_limits(conn, tenant_id):
            print(f"{args.tenant}  {channel:<6} {limit_sender or '(all senders)':<14} {per_second:g}/s")
    return 0


def _api_client(args: argparse.Namespace) -> httpx.Client:
    key = args.api_key or os.environ.get("BALSONG_API_KEY")
    if not key:
        raise SystemExit("an API key is needed: --api-key or BALSONG_API_KEY")
    return httpx.Client(
        base_url=get_settings().api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def cmd_status(args: argparse.Namespace) -> int:
    from cli.progress import follow, summary

    with _api_client(args) as client:
        job = follow(client, args.job, timeout=args.timeout)
    print(summary(job, 0.0))
    return 0


def cmd_recount(args: argparse.Namespace) -> int:
    from engine.lifecycle import counters
    from engine.runtime import get_runtime

    rt = get_runtime()
    with rt.pool.connection() as conn:
        row = conn.execute("SELECT created_at FROM jobs WHERE id = %s", (args.job,)).fetchone()
        if row is None:
            raise SystemExit(f"no job {args.job}")
        counts = counters.recount(conn, args.job, row[0])
    before = counters.read(rt.redis, rt.keys, args.job)
    counters.replace(rt.redis, rt.keys, args.job, counts)
    print(f"job {args.job}: counters were {before}, now {counts}")
    return 0


def cmd_resend(args: argparse.Namespace) -> int:
    from actors.broker import install_broker
    from actors.publish import publish_resend
    from engine.accounts import audit
    from engine.errors import BalsongError
    from engine.intake.job_store import PartitionCache
    from engine.intake.resend import create_resend, validate_reasons
    from engine.runtime import get_runtime

    rt = get_runtime()
    install_broker(rt.settings)
    with rt.pool.connection() as conn:
        row = conn.execute("SELECT tenant_id FROM jobs WHERE id = %s", (args.job,)).fetchone()
        if row is None:
            raise SystemExit(f"no job {args.job}")
        try:
            stored = create_resend(
                conn,
                tenant_id=int(row[0]),
                source_job_id=args.job,
                reasons=validate_reasons(args.reason),
                now=rt.clock.now(),
                idempotency_key=args.idempotency_key,
                partitions=PartitionCache(),
                settings=rt.settings,
                actor=audit.cli_actor(),
            )
        except BalsongError as exc:
            raise SystemExit(f"job {args.job} not resent: {exc}") from None
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
    from engine.errors import BalsongError
    from engine.lifecycle.pausing import resume_job
    from engine.runtime import get_runtime

    rt = get_runtime()
    install_broker(rt.settings)
    with rt.pool.connection() as conn:
        try:
            with conn.transaction():
                resume_job(conn, args.job)
                tenant = conn.execute("SELECT tenant_id FROM jobs WHERE id = %s", (args.job,)).fetchone()
                assert tenant is not None  # resume_job found the job
                audit.record(
                    conn,
                    tenant_id=int(tenant[0]),
                    actor=audit.cli_actor(),
                    action=audit.AuditAction.JOB_RESUME,
                    subject=audit.job_subject(args.job),
                )
        except BalsongError as exc:
            print(exc, file=sys.stderr)
            return 1
        publish_batches(top_up(conn, args.job, rt.settings.batch_window))
    print(f"job {args.job} resumed")
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from cli.dead_letters import run

    return run(args.action, limit=args.limit)


def cmd_scheduler(args: argparse.Namespace) -> int:
    from cli.multiprocess import prepare

    settings = _process_settings()
    prepare(settings, "scheduler")  # before anything imports prometheus_client

    from actors.broker import install_broker, queue_names_with_dramatiq_queues
    from engine.redis_client import make_redis
    from engine.runtime import get_runtime
    from metrics.exposition import process_registry, serve
    from scheduler.duties import build_duties
    from scheduler.runner import Scheduler
    from scheduler.system_metrics import PROBE_TIMEOUT_SECONDS, SystemCollector, SystemSources

    rt = get_runtime()
    install_broker(rt.settings)
    # The collector's own Redis client, quick to give up: a scrape reports Redis down rather
    # than outlasting Prometheus's scrape timeout (the duties' client waits and retries).
    probe_redis = make_redis(settings.redis_url, timeout_seconds=PROBE_TIMEOUT_SECONDS)
    sources = SystemSources(
        settings, rt.pool, probe_redis, rt.keys, queue_names_with_dramatiq_queues(), lambda: rt.clock.now()
    )
    serve(settings.metrics_host, settings.scheduler_metrics_port, process_registry(SystemCollector(sources)))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Scheduler(rt.redis, rt.keys, build_duties(rt), owner=rt.worker_id).run_forever(stop)
    rt.close()
    return 0


def cmd_callbacks(args: argparse.Namespace) -> int:
    from cli.multiprocess import prepare

    settings = _process_settings()
    prepare(settings, "callbacks")  # before anything imports prometheus_client

    from engine.callbacks.dispatcher import Dispatcher, DispatcherLease, run_forever
    from engine.runtime import get_runtime
    from metrics.exposition import process_registry, serve

    rt = get_runtime()
    serve(settings.metrics_host, settings.callbacks_metrics_port, process_registry())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run_forever(Dispatcher(rt.pool, settings, rt.clock), DispatcherLease(rt.pool, rt.worker_id), stop)
    rt.close()
    return 0


def _exec(argv: list[str]) -> int:
    os.execv(argv[0], argv)
    return 0  # not reached


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from cli.multiprocess import prepare
    from engine.logs import logging_config

    settings = _process_settings()
    # uvicorn's workers are fresh interpreters started from here: they inherit the directory.
    prepare(settings, "api")
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=logging_config(settings.log_level),
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from cli.multiprocess import prepare_worker

    settings = _process_settings()
    # Dramatiq forks its worker processes from this one: set up metrics before it starts them.
    prepare_worker(settings)

    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from cli.processes import dramatiq_args

    processes = args.processes or settings.worker_processes
    threads = args.threads or settings.worker_threads
    return int(dramatiq_main(make_argument_parser().parse_args(dramatiq_args(processes, threads))))


def cmd_simulator(args: argparse.Namespace) -> int:
    from carriers.simulator.__main__ import serve

    serve(args)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    return run_demo(recipients=args.recipients)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="balsong", description="balsong: bulk SMS/LMS dispatch")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.set_defaults(handler=handler)
        return p

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)

    tenant = sub.add_parser("tenant", help="tenants").add_subparsers(dest="tenant_command", required=True)
    create = tenant.add_parser("create", help="create a tenant and print its first API key")
    create.add_argument("name")
    create.add_argument(
        "--scopes",
        type=account.parse_scopes,
        default="send,read",
        help="comma-separated: send,read,export:unmasked,admin",
    )
    create.set_defaults(handler=cmd_tenant_create)

    sender = sub.add_parser("sender", help="sender numbers").add_subparsers(
        dest="sender_command", required=True
    )
    sender_add = sender.add_parser("add", help="register an operator-verified sender number (approved)")
    sender_add.add_argument("tenant")
    sender_add.add_argument("number")
    sender_add.set_defaults(handler=cmd_sender_add)
    account.register(sub, tenant, sender)
    callbacks.register(tenant)
    operators.register(sub)

    rate = sub.add_parser("rate-limit", help="a tenant's (or sender's) caps below the channel's")
    rate_sub = rate.add_subparsers(dest="rate_command", required=True)
    for name, help_ in (("set", "cap a tenant or sender"), ("clear", "remove a cap"), ("list", "show caps")):
        p = rate_sub.add_parser(name, help=help_)
        p.add_argument("tenant")
        if name != "list":
            p.add_argument("channel", choices=("sms", "lms", "kakao"))
        if name == "set":
            p.add_argument("per_second", type=float)
        if name != "list":
            p.add_argument("--sender", help="only this sender number")
        p.set_defaults(handler=cmd_rate_limit)

    status = add("status", cmd_status, "follow a job with a progress bar until it finishes")
    status.add_argument("job", type=int)
    status.add_argument("--api-key")
    status.add_argument("--timeout", type=float, default=24 * 3600)

    recount = add("recount", cmd_recount, "recompute a job's live counters from PostgreSQL")
    recount.add_argument("job", type=int)

    resend = add("resend", cmd_resend, "a new job for a finished job's failed recipients (resend_failed)")
    resend.add_argument("job", type=int)
    resend.add_argument(
        "--reason", action="append", metavar="CODE", help="only failures with this reason code (repeatable)"
    )
    resend.add_argument("--idempotency-key", help="the same key again makes no second job")

    resume = add("resume", cmd_resume, "resume a job paused for its failure ratio")
    resume.add_argument("job", type=int)

    dead = add("dead-letters", cmd_dead_letters, "messages that failed every retry: list, requeue or purge")
    dead.add_argument("action", nargs="?", choices=("list", "requeue", "purge"), default="list")
    dead.add_argument("--limit", type=int, default=1000, help="at most this many messages per queue")

    add("scheduler", cmd_scheduler, "run the scheduler (flusher, outbox, reconciliation, report poller)")
    add("callbacks", cmd_callbacks, "run the status callback dispatcher (one active; others stand by)")
    api = add("api", cmd_api, "run the HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1)
    worker = add("worker", cmd_worker, "run Dramatiq worker processes")
    worker.add_argument("--processes", type=int)
    worker.add_argument("--threads", type=int)
    from carriers.simulator.options import add_arguments as add_simulator_arguments

    add_simulator_arguments(add("simulator", cmd_simulator, "run the carrier simulator"))
    demo = add("demo", cmd_demo, "start everything, send a demo job, show progress and results")
    demo.add_argument("--recipients", type=int, default=100_000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from engine.logs import configure_logging

    configure_logging(get_settings().log_level)
    report_unknown_settings()  # a misspelt BALSONG_* variable, once, whatever the command
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
