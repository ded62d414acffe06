"""``balsong``: the command line for operators, the Procfile and the demo.

Every expected error — bad input, an unknown tenant or job, a refused action, a service that does
not answer — ends the command with one line on stderr saying what is wrong and what to do, and an
exit status by class (`cli.exits.Exit`); :func:`failure` is the one place that maps them. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from cli import account, callbacks, jobs, operators, send, stats
from cli.exits import CommandError, Exit, exit_table
from engine.config import MissingSecrets, Settings, get_settings
from engine.unknown_settings import report_unknown_settings


def _connect():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(get_settings().database_url, autocommit=True)


def _process_settings() -> Settings:
    """The settings of a long-running process (api, worker, scheduler). In production without
    its secrets it does not start (exit status 6), every missing secret named on stderr."""
    settings = get_settings()
    settings.check_secrets()  # MissingSecrets: mapped by `failure`
    return settings


# -- mapping errors to messages and exit statuses ---------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _where(url: str) -> str:
    """``host:port`` of a service URL, never its password."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.replace("redis+cluster://", "redis://"))
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    except ValueError:
        return "(unparsable URL)"


def _database_where() -> str:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(get_settings().database_url)
    return f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params.get('dbname', '')}"


def _connection_failure() -> Exception | None:
    """Why PostgreSQL refuses a connection now (a pool's timeout hides it); None if it does not."""
    import psycopg

    try:
        psycopg.connect(get_settings().database_url, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return exc
    return None


def _api_problem(exc: object) -> tuple[Exit, str]:
    """An API answer that is not a success (httpx.HTTPStatusError)."""
    response = exc.response  # type: ignore[attr-defined]
    detail = ""
    try:
        body = response.json()
        detail = str(body.get("detail") or body.get("title") or "")
    except ValueError:
        detail = response.text[:200]
    status = response.status_code
    where = f"the API ({response.request.method} {response.request.url.path}) answered {status}"
    if status == 401:
        return Exit.REFUSED, f"{where}: the API key is not valid (--api-key or BALSONG_API_KEY)"
    if status == 403:
        return Exit.REFUSED, f"{where}: {detail or 'the key lacks the scope this needs'}"
    if status == 404:
        return (
            Exit.NOT_FOUND,
            f"{where}: {detail or 'not found'} (is it the tenant's job, and the right API?)",
        )
    if status in (400, 422):
        return Exit.USAGE, f"{where}: {detail}"
    if status >= 500:
        return Exit.UNAVAILABLE, f"{where}: {detail or 'a server error'}; see the API's log"
    return Exit.REFUSED, f"{where}: {detail}"


def failure(exc: BaseException) -> tuple[Exit, str] | None:
    """The exit status and the one-line message for an expected error; None for a bug.

    Parameters:
      exc: what a command raised.
    """
    import dramatiq.errors
    import httpx
    import pika.exceptions
    import psycopg
    import psycopg_pool
    import redis.exceptions

    from engine.errors import BalsongError, NotFound, ValidationError
    from engine.intake.phone import InvalidPhone

    settings = get_settings()
    if isinstance(exc, CommandError):
        return exc.code, str(exc)
    if isinstance(exc, MissingSecrets):
        return Exit.CONFIG, f"cannot start: {exc}"
    if isinstance(exc, NotFound):
        return Exit.NOT_FOUND, str(exc)
    if isinstance(exc, ValidationError | InvalidPhone):
        return Exit.USAGE, str(exc)
    if isinstance(exc, BalsongError):
        return Exit.REFUSED, str(exc)
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn):
        return Exit.CONFIG, (
            f"the database {_database_where()} has not got balsong's current schema ({_first_line(exc)}):"
            " run `balsong db upgrade`"
        )
    if isinstance(exc, psycopg.errors.UniqueViolation):
        detail = exc.diag.message_detail or _first_line(exc)
        return Exit.REFUSED, f"refused: {detail}"
    if isinstance(exc, psycopg.IntegrityError):
        return Exit.REFUSED, f"refused by the database: {_first_line(exc)}"
    if isinstance(exc, psycopg.OperationalError):
        cause = _connection_failure() if isinstance(exc, psycopg_pool.PoolTimeout) else exc
        if cause is not None and "does not exist" in str(cause):
            return Exit.CONFIG, (
                f"the database {_database_where()} does not exist: run `balsong db upgrade` (it creates it)"
            )
        reason = _first_line(cause or exc).removeprefix("connection failed: ")
        return Exit.UNAVAILABLE, (
            f"PostgreSQL at {_database_where()} is unreachable ({reason}):"
            " start it (make services) or set BALSONG_DATABASE_URL"
        )
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return Exit.UNAVAILABLE, (
            f"Redis at {_where(settings.redis_url)} is unreachable ({_first_line(exc)}):"
            " start it (make services) or set BALSONG_REDIS_URL"
        )
    if isinstance(exc, pika.exceptions.AMQPConnectionError | dramatiq.errors.BrokerConnectionError):
        return Exit.UNAVAILABLE, (
            f"RabbitMQ at {_where(settings.broker_url)} is unreachable"
            f" ({_first_line(exc) or 'no connection'}):"
            " start it (make services) or set BALSONG_BROKER_URL"
        )
    if isinstance(exc, httpx.HTTPStatusError):
        return _api_problem(exc)
    if isinstance(exc, httpx.TransportError):
        return Exit.UNAVAILABLE, (
            f"the API at {settings.api_url} does not answer ({_first_line(exc)}):"
            " start the stack (make run) or set BALSONG_API_URL"
        )
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError):
        return Exit.USAGE, f"cannot use {exc.filename}: {exc.strerror}"
    return None


# -- commands ----------------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from engine.db import upgrade

    upgrade()
    print("database is at the latest schema")
    return 0


def cmd_tenant_create(args: argparse.Namespace) -> int:
    from engine.accounts.tenants import create_api_key

    with _connect() as conn, conn.transaction():
        tenant_id = account.new_tenant(conn, args.name)
        key = create_api_key(conn, tenant_id, args.scopes)
    print(f"tenant {args.name} (id {tenant_id}) created; its API key (shown once):", file=sys.stderr)
    print(key)
    return 0


def cmd_sender_add(args: argparse.Namespace) -> int:
    from engine.accounts import audit
    from engine.accounts.tenants import tenant_id_by_name

    with _connect() as conn, conn.transaction():
        tenant_id = tenant_id_by_name(conn, args.tenant)
        number = account.new_sender(conn, tenant_id, args.number)
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
            raise CommandError(f"{args.tenant} has no such cap on {args.channel}", Exit.NOT_FOUND)
        for limit_sender, channel, per_second in list_rate_limits(conn, tenant_id):
            print(f"{args.tenant}  {channel:<6} {limit_sender or '(all senders)':<14} {per_second:g}/s")
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    from cli.dead_letters import run

    return run(args.action, limit=args.limit)


def cmd_scheduler(args: argparse.Namespace) -> int:
    from cli.multiprocess import ENV, prepare

    settings = _process_settings()
    group = args.duties or ("others" if settings.scheduler_report_process else "all")
    if group == "reports":
        from scheduler.report_process import die_with_parent

        die_with_parent(args.parent)
    if group != "reports" or ENV not in os.environ:
        # (The report process writes its samples beside its parent's: the parent's endpoint
        # serves both, and only the parent empties the directory.)
        prepare(settings, "scheduler")  # before anything imports prometheus_client

    from actors.broker import install_broker, queue_names_with_dramatiq_queues
    from engine.redis_client import make_redis
    from engine.runtime import get_runtime
    from metrics.exposition import process_registry, serve
    from scheduler.duties import build_duties
    from scheduler.report_process import ReportProcess, select
    from scheduler.runner import Scheduler
    from scheduler.system_metrics import PROBE_TIMEOUT_SECONDS, SystemCollector, SystemSources

    rt = get_runtime()
    child = None
    if group != "reports":
        install_broker(rt.settings)
        # The collector's own Redis client, quick to give up: a scrape reports Redis down
        # rather than outlasting Prometheus's scrape timeout (the duties' client waits and
        # retries).
        probe_redis = make_redis(settings.redis_url, timeout_seconds=PROBE_TIMEOUT_SECONDS)
        sources = SystemSources(
            settings,
            rt.pool,
            probe_redis,
            rt.keys,
            queue_names_with_dramatiq_queues(),
            lambda: rt.clock.now(),
        )
        serve(
            settings.metrics_host, settings.scheduler_metrics_port, process_registry(SystemCollector(sources))
        )
    if group == "others":
        child = ReportProcess()
        child.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Scheduler(rt.redis, rt.keys, select(build_duties(rt), group), owner=rt.worker_id).run_forever(stop)
    if child is not None:
        child.stop()
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
    # Sending comes first: where both want the CPU, the dispatcher yields (it catches up when
    # the burst is over; its events wait durably in the outbox meanwhile).
    os.nice(settings.callbacks_nice)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run_forever(Dispatcher(rt.pool, settings, rt.clock), DispatcherLease(rt.pool, rt.worker_id), stop)
    rt.close()
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from cli.multiprocess import prepare
    from cli.stack import require_free
    from engine.logs import logging_config

    settings = _process_settings()
    require_free("API", args.host, args.port, "--port")
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
    from actors.broker import QUEUES
    from cli.multiprocess import prepare_worker

    unknown = sorted(set(args.queues or ()) - set(QUEUES))
    if unknown:
        raise CommandError(f"no queue {', '.join(unknown)}; the queues are: {' '.join(QUEUES)}", Exit.USAGE)
    if args.watch and not os.path.isdir(args.watch):
        raise CommandError(f"--watch {args.watch}: no such directory", Exit.USAGE)
    settings = _process_settings()
    # Dramatiq forks its worker processes from this one: set up metrics before it starts them.
    prepare_worker(settings)

    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from cli.processes import dramatiq_args

    processes = args.processes or settings.worker_processes
    threads = args.threads or settings.worker_threads
    argv = dramatiq_args(processes, threads, queues=args.queues, watch=args.watch)
    return int(dramatiq_main(make_argument_parser().parse_args(argv)))


def cmd_simulator(args: argparse.Namespace) -> int:
    from carriers.simulator.__main__ import serve
    from cli.stack import require_free

    require_free("carrier simulator", args.host, args.port, "--port")
    serve(args)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from cli import stack

    settings = get_settings()
    with stack.running(settings) as up:
        print(
            f"balsong is running: API {up.api_url}, console {up.console_url}, carrier simulator"
            f" {settings.sms_api_url}; worker, scheduler and callback dispatcher too;"
            f" logs in {stack.LOG_DIR}/."
            " Ctrl-C stops it.",
            flush=True,
        )
        stack.stay_up(up)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    return run_demo(recipients=args.recipients, stay=not args.no_stay)


def _version() -> str:
    try:
        return version("balsong")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed: make install)"


EPILOG = f"""\
Settings come from BALSONG_* environment variables (README: Configuration); BALSONG_API_URL says
where `status` finds the API.

exit status:
{exit_table()}
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="balsong",
        description="balsong (발송): bulk SMS/LMS/KakaoTalk dispatch."
        " Run `balsong COMMAND --help` for a command.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"balsong {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations (creates the database if missing)").set_defaults(
        handler=cmd_db_upgrade
    )

    tenant = sub.add_parser("tenant", help="tenants").add_subparsers(dest="tenant_command", required=True)
    create = tenant.add_parser("create", help="create a tenant and print its first API key")
    create.add_argument("name", help="the tenant's unique name")
    create.add_argument(
        "--scopes",
        type=account.parse_scopes,
        default="send,read",
        help="the key's scopes, comma-separated: send,read,export:unmasked,admin (default: send,read)",
    )
    create.set_defaults(handler=cmd_tenant_create)

    sender = sub.add_parser("sender", help="sender numbers").add_subparsers(
        dest="sender_command", required=True
    )
    sender_add = sender.add_parser("add", help="register an operator-verified sender number (approved)")
    sender_add.add_argument("tenant", help="the tenant's name")
    sender_add.add_argument("number", help="the sender number, e.g. 02-1234-5678")
    sender_add.set_defaults(handler=cmd_sender_add)
    account.register(sub, tenant, sender)
    callbacks.register(tenant)
    stats.register(sub)
    operators.register(sub)

    rate = sub.add_parser("rate-limit", help="a tenant's (or sender's) caps below the channel's")
    rate_sub = rate.add_subparsers(dest="rate_command", required=True)
    for name, help_ in (("set", "cap a tenant or sender"), ("clear", "remove a cap"), ("list", "show caps")):
        p = rate_sub.add_parser(name, help=help_)
        p.add_argument("tenant", help="the tenant's name")
        if name != "list":
            p.add_argument("channel", choices=("sms", "lms", "kakao"), help="the carrier channel")
        if name == "set":
            p.add_argument("per_second", type=float, help="the cap, in recipients per second")
        if name != "list":
            p.add_argument("--sender", help="only this sender number of the tenant")
        p.set_defaults(handler=cmd_rate_limit)

    jobs.register(sub)
    send.register(sub)

    dead = sub.add_parser("dead-letters", help="messages that failed every retry: list, requeue or purge")
    dead.add_argument(
        "action",
        nargs="?",
        choices=("list", "requeue", "purge"),
        default="list",
        help="list them (default), put them back on their queues, or delete them",
    )
    dead.add_argument(
        "--limit", type=int, default=1000, help="at most this many messages per queue (default: 1000)"
    )
    dead.set_defaults(handler=cmd_dead_letters)

    scheduler = sub.add_parser(
        "scheduler", help="run the scheduler (flusher, outbox, reconciliation, report poller)"
    )
    scheduler.add_argument(
        "--duties",
        choices=("all", "reports", "others"),
        help="run only these duties: the report polls, the others, or all in this one process"
        " (default: the others here and the report polls in a child process, unless"
        " BALSONG_SCHEDULER_REPORT_PROCESS=false)",
    )
    # The report process's parent, given by the parent itself (not for people).
    scheduler.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    scheduler.set_defaults(handler=cmd_scheduler)
    sub.add_parser(
        "callbacks", help="run the status callback dispatcher (one active; others stand by)"
    ).set_defaults(handler=cmd_callbacks)
    api = sub.add_parser("api", help="run the HTTP API and the operator console")
    api.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000, help="TCP port to listen on (default: 8000)")
    api.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default: 1)")
    api.set_defaults(handler=cmd_api)

    from actors.broker import QUEUES

    worker = sub.add_parser("worker", help="run Dramatiq worker processes (plan, send, reports, resends)")
    worker.add_argument(
        "--processes", type=int, help="worker processes (default: BALSONG_WORKER_PROCESSES, 2)"
    )
    worker.add_argument(
        "--threads", type=int, help="threads per worker process (default: BALSONG_WORKER_THREADS, 8)"
    )
    worker.add_argument(
        "--queues",
        nargs="+",
        metavar="QUEUE",
        help="consume only these queues (default: all), e.g. the transactional lane: "
        f"send.sms.tx send.lms.tx send.kakao.tx; all: {' '.join(QUEUES)}",
    )
    worker.add_argument(
        "--watch", metavar="DIR", help="development: restart the workers when a .py file under DIR changes"
    )
    worker.set_defaults(handler=cmd_worker)

    from carriers.simulator.options import add_arguments as add_simulator_arguments

    simulator = sub.add_parser(
        "simulator", help="run the carrier simulator (NHN Cloud SMS and AlimTalk APIs)"
    )
    add_simulator_arguments(simulator)
    simulator.set_defaults(handler=cmd_simulator)

    sub.add_parser(
        "run",
        help="run the whole local stack (simulator, API, worker, scheduler, callbacks) until Ctrl-C",
        description="The Procfile's processes, in the foreground; refuses taken ports."
        " Run `balsong db upgrade` first.",
    ).set_defaults(handler=cmd_run)

    demo = sub.add_parser(
        "demo", help="start the stack, send a demo job, show its progress and results, then keep the stack up"
    )
    demo.add_argument(
        "--recipients", type=int, default=100_000, help="recipients of the demo job (default: 100000)"
    )
    demo.add_argument("--no-stay", action="store_true", help="stop the stack once the job has finished")
    demo.set_defaults(handler=cmd_demo)
    return parser


#: Commands that run a process (they log as processes do); every other command is one-shot.
PROCESSES = frozenset({cmd_api, cmd_worker, cmd_scheduler, cmd_callbacks, cmd_simulator})
#: Client libraries whose own log lines a one-shot command silences.
QUIET_LOGGERS = ("psycopg", "pika", "dramatiq", "httpx", "alembic")


def main(argv: Sequence[str] | None = None) -> int:
    from engine.logs import configure_logging

    args = build_parser().parse_args(argv)
    try:
        configure_logging(get_settings().log_level)
        report_unknown_settings()  # a misspelt BALSONG_* variable, once, whatever the command
        if args.handler not in PROCESSES:
            # A one-shot command says what went wrong in one line of its own; the client
            # libraries' log lines about the same failure (retries, tracebacks) are noise here.
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.CRITICAL)
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("balsong: interrupted", file=sys.stderr)
        return int(Exit.INTERRUPTED)
    except Exception as exc:
        known = failure(exc)
        if known is None:
            raise
        code, message = known
        print(f"balsong: {message}", file=sys.stderr)
        return int(code)


if __name__ == "__main__":
    sys.exit(main())
