"""`balsong operator add|list|role|disable|enable|unlock|password`: a tenant's console accounts.

An operator signs in to the console with their email and password; their role (admin, sender,
viewer) decides what they may do there (`engine.accounts.operators`). Passwords are asked for
twice at a terminal, or read from one line of standard input with ``--password-stdin`` (for
scripts: never as an argument, which ``ps`` and shell histories show). Every change is written
to the tenant's audit log as done by ``CLI (<OS user>)``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from cli.exits import CommandError, Exit
from engine.accounts import audit, operators
from engine.accounts.tenants import tenant_id_by_name
from engine.config import get_settings


def _connect() -> Any:
    import psycopg

    return psycopg.connect(get_settings().database_url, autocommit=True)


def _password(args: argparse.Namespace) -> str:
    """The new password: a line of stdin (``--password-stdin``), or typed twice at a terminal."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.email}: ")
    if getpass.getpass("again: ") != first:
        raise CommandError("the two passwords differ; nothing changed", Exit.USAGE)
    return first


def cmd_operator(args: argparse.Namespace) -> int:
    """Refusals exit as every command's do (`cli.exits`): a password or email that breaks a rule
    2, an unknown tenant or operator 3."""
    command = args.operator_command
    password = _password(args) if command in ("add", "password") else None
    with _connect() as conn:
        tenant_id = tenant_id_by_name(conn, args.tenant)
        if command == "list":
            _print_list(operators.list_operators(conn, tenant_id))
            return 0
        actor = audit.cli_actor()
        if command == "add":
            assert password is not None
            added = operators.add_operator(conn, tenant_id, args.email, args.role, password, actor=actor)
            print(f"{args.tenant}: operator {added.email} added ({added.role})")
        elif command == "role":
            before = operators.set_role(conn, tenant_id, args.email, args.role, actor=actor)
            print(f"{args.tenant}: {args.email} is {args.role} (was {before}); live sessions follow at once")
        elif command == "disable":
            operators.disable(conn, tenant_id, args.email, actor=actor)
            print(f"{args.tenant}: {args.email} disabled; their console sessions have ended")
        elif command == "enable":
            operators.enable(conn, tenant_id, args.email, actor=actor)
            print(f"{args.tenant}: {args.email} may sign in again")
        elif command == "unlock":
            operators.unlock(conn, tenant_id, args.email, actor=actor)
            print(f"{args.tenant}: {args.email} unlocked")
        else:
            assert password is not None
            operators.reset_password(conn, tenant_id, args.email, password, actor=actor)
            print(f"{args.tenant}: {args.email} has a new password; their console sessions have ended")
    return 0


def _print_list(found: list[operators.Operator]) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    for operator in found:
        if operator.disabled_at is not None:
            state = f"disabled {operator.disabled_at:%Y-%m-%d %H:%M}"
        elif operator.locked(now):
            assert operator.locked_until is not None
            state = f"locked until {operator.locked_until:%Y-%m-%d %H:%M:%S} UTC"
        else:
            state = "active"
        last = f"{operator.last_sign_in_at:%Y-%m-%d %H:%M}" if operator.last_sign_in_at else "never"
        print(f"{operator.email:<40} {operator.role:<7} {state:<32} last sign-in {last}")


def register(sub: Any) -> None:
    """Add ``balsong operator ...`` to the CLI's top-level parsers."""
    operator = sub.add_parser("operator", help="a tenant's console accounts (email, password, role)")
    commands = operator.add_subparsers(dest="operator_command", required=True)

    def command(name: str, help_: str, *, email: bool = True) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help_)
        p.add_argument("tenant", help="the tenant's name (as `balsong tenant create` made it)")
        if email:
            p.add_argument("email", help="the operator's email: their sign-in name (case does not matter)")
        p.set_defaults(handler=cmd_operator)
        return p

    for name, help_ in (
        ("add", "a new operator (asks for the password)"),
        ("password", "set an operator's password (their sessions end)"),
    ):
        p = command(name, help_)
        if name == "add":
            p.add_argument(
                "--role",
                choices=operators.ROLES,
                required=True,
                help="viewer: read; sender: also cancel, resume, resend; admin: all, the audit log too",
            )
        p.add_argument(
            "--password-stdin", action="store_true", help="read the password from one line of stdin"
        )
    command("list", "the tenant's operators: role, state, last sign-in", email=False)
    command("role", "change an operator's role (live sessions follow at once)").add_argument(
        "role", choices=operators.ROLES, help="the new role: viewer, sender or admin"
    )
    command("disable", "stop an operator signing in (their sessions end at once)")
    command("enable", "let a disabled operator sign in again")
    command("unlock", "lift a lock-out after repeated failed sign-ins")
