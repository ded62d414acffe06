"""`balsong tenant top-up|adjust|balance|price`, `balsong sender approve|block|list`,
`balsong key`, `balsong platform-key`, `balsong opt-out`.

Operator commands for money, keys, sender numbers and advertising opt-outs; they share the
engine's functions with the API (`api.account`). Money is minted here (top-up, adjust) or by a
platform key, never by a tenant's own key. Money and sender changes are written to the tenant's
audit log as done by ``CLI (<OS user>)``, in the change's transaction.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.accounts import audit, billing, opt_outs
from engine.accounts.audit import AuditAction
from engine.accounts.tenants import (
    ALL_SCOPES,
    SENDER_STATES,
    list_senders,
    set_sender_state,
    tenant_id_by_name,
)
from engine.config import get_settings


def _connect() -> Any:
    import psycopg

    return psycopg.connect(get_settings().database_url, autocommit=True)


def _points(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number of points: {text!r}") from None


def _amount(text: str) -> Decimal:
    try:
        return billing.parse_amount(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"amount {text!r}: {exc}") from None


def _signed_amount(text: str) -> Decimal:
    try:
        return billing.parse_amount(text, signed=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"amount {text!r}: {exc}") from None


def parse_scopes(text: str) -> tuple[str, ...]:
    """A tenant key's scopes from ``--scopes send,read``: known tenant scopes, never platform."""
    scopes = tuple(dict.fromkeys(s.strip() for s in text.split(",")))
    if "platform" in scopes:
        raise argparse.ArgumentTypeError("a tenant's key never has the platform scope (balsong platform-key)")
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown or not scopes:
        raise argparse.ArgumentTypeError(f"unknown scopes {unknown}; choose among {','.join(ALL_SCOPES)}")
    return scopes


def cmd_top_up(args: argparse.Namespace) -> int:
    with _connect() as conn, conn.transaction():
        tenant_id = tenant_id_by_name(conn, args.tenant)
        after = billing.top_up(conn, tenant_id, args.amount, memo=args.memo)
        _money_audit(conn, tenant_id, AuditAction.BALANCE_TOP_UP, args.amount, args.memo, after)
    print(f"{args.tenant}: +{args.amount} points, balance {after}")
    return 0


def cmd_adjust(args: argparse.Namespace) -> int:
    with _connect() as conn, conn.transaction():
        tenant_id = tenant_id_by_name(conn, args.tenant)
        after = billing.adjust(conn, tenant_id, args.amount, args.memo)
        _money_audit(conn, tenant_id, AuditAction.BALANCE_ADJUST, args.amount, args.memo, after)
    print(f"{args.tenant}: {args.amount:+} points ({args.memo}), balance {after}")
    return 0


def _money_audit(
    conn: Any, tenant_id: int, action: AuditAction, amount: Decimal, memo: str | None, after: Decimal
) -> None:
    audit.record(
        conn,
        tenant_id=tenant_id,
        actor=audit.cli_actor(),
        action=action,
        details={"amount": str(amount), "memo": memo, "balance_after": str(after)},
    )


def cmd_balance(args: argparse.Namespace) -> int:
    with _connect() as conn:
        tenant_id = tenant_id_by_name(conn, args.tenant)
        check = billing.balance(conn, tenant_id)
        prices = billing.prices_for(conn, get_settings(), tenant_id)
    print(f"{args.tenant}: balance {check.balance} points (ledger sum {check.ledger_sum})")
    print("prices: " + ", ".join(f"{channel} {price}" for channel, price in prices.as_json().items()))
    if not check.consistent:
        print("MISMATCH: the balance is not the sum of the ledger", file=sys.stderr)
        return 1
    return 0


def cmd_price(args: argparse.Namespace) -> int:
    with _connect() as conn:
        billing.set_price(conn, tenant_id_by_name(conn, args.tenant), args.channel, args.price)
    print(f"{args.tenant}: {args.channel} costs {args.price} points per message")
    return 0


def cmd_limits(args: argparse.Namespace) -> int:
    from engine.intake.intake_limits import limits_for, set_limits

    with _connect() as conn:
        tenant_id = tenant_id_by_name(conn, args.tenant)
        given = (
            args.requests_per_second,
            args.recipients_per_day,
            args.max_bytes_in_flight,
            args.max_concurrent,
        )
        if any(value is not None for value in given) or args.reset:
            set_limits(
                conn,
                tenant_id,
                requests_per_second=args.requests_per_second,
                recipients_per_day=args.recipients_per_day,
                max_bytes_in_flight=args.max_bytes_in_flight,
                max_concurrent=args.max_concurrent,
            )
        limits = limits_for(conn, get_settings(), tenant_id)
    print(
        f"{args.tenant}: {limits.requests_per_second:g} job submissions per second, "
        f"{limits.recipients_per_day or 'unlimited'} recipients per day, "
        f"{limits.max_bytes_in_flight or 'unlimited'} request bytes in flight and "
        f"{limits.max_concurrent or 'unlimited'} submissions at once (0 or unlimited: no limit)"
    )
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    from engine.accounts.tenants import create_api_key, list_api_keys, revoke_api_key, rotate_api_key

    with _connect() as conn:
        tenant_id = tenant_id_by_name(conn, args.tenant)
        if args.key_command == "list":
            for key in list_api_keys(conn, tenant_id):
                state = f"revoked {key['revoked_at']:%Y-%m-%d %H:%M}" if key["revoked_at"] else "live"
                print(f"{key['id']:>6}  {key['prefix']}…  {','.join(key['scopes']):<28} {state}")  # type: ignore[arg-type]
        elif args.key_command == "create":
            print(create_api_key(conn, tenant_id, args.scopes))
        elif args.key_command == "rotate":
            print(rotate_api_key(conn, tenant_id, args.key_id))
            print(f"key {args.key_id} is revoked; the key above replaces it (shown once)", file=sys.stderr)
        else:
            revoke_api_key(conn, tenant_id, args.key_id)
            print(f"key {args.key_id} revoked")
    return 0


def cmd_platform_key(args: argparse.Namespace) -> int:
    from engine.accounts.platform_keys import create_platform_key, list_platform_keys, revoke_platform_key

    with _connect() as conn:
        if args.platform_key_command == "list":
            for key in list_platform_keys(conn):
                state = f"revoked {key['revoked_at']:%Y-%m-%d %H:%M}" if key["revoked_at"] else "live"
                print(f"{key['id']:>6}  {key['prefix']}…  {key['name']:<28} {state}")
        elif args.platform_key_command == "create":
            print(create_platform_key(conn, args.name))
            print("it adds money to any tenant's balance: keep it in a secret store", file=sys.stderr)
        else:
            revoke_platform_key(conn, args.key_id)
            print(f"platform key {args.key_id} revoked")
    return 0


#: The audit action of each state a sender number is put in.
SENDER_STATE_ACTIONS = {
    "approved": AuditAction.SENDER_APPROVE,
    "blocked": AuditAction.SENDER_BLOCK,
    "pending": AuditAction.SENDER_UNAPPROVE,
}


def cmd_sender_state(args: argparse.Namespace) -> int:
    from engine.intake.phone import normalize_sender

    with _connect() as conn, conn.transaction():
        tenant_id = tenant_id_by_name(conn, args.tenant)
        set_sender_state(conn, tenant_id, args.number, args.state)
        audit.record(
            conn,
            tenant_id=tenant_id,
            actor=audit.cli_actor(),
            action=SENDER_STATE_ACTIONS[args.state],
            subject=audit.sender_subject(normalize_sender(args.number)),
        )
    print(f"{args.tenant}: sender {args.number} is {args.state}")
    return 0


def cmd_sender_list(args: argparse.Namespace) -> int:
    with _connect() as conn:
        for number, state in list_senders(conn, tenant_id_by_name(conn, args.tenant)):
            print(f"{number:<14} {state}")
    return 0


def cmd_opt_out_import(args: argparse.Namespace) -> int:
    with open(args.file, "rb") as binary, _connect() as conn:
        fmt, numbered = opt_outs.read_file(binary)
        result = opt_outs.import_numbers(conn, tenant_id_by_name(conn, args.tenant), numbered, source=fmt)
    for line, _, reason in result.refusals:
        print(f"line {line}: refused: {reason}", file=sys.stderr)
    if result.refused > len(result.refusals):
        print(f"... and {result.refused - len(result.refusals)} more lines refused", file=sys.stderr)
    print(
        f"{args.tenant}: {result.added} numbers added to the opt-out list, {result.already} on it already, "
        f"{result.refused} refused"
    )
    return 0


def cmd_opt_out_list(args: argparse.Namespace) -> int:
    with _connect() as conn:
        page = opt_outs.listing(conn, tenant_id_by_name(conn, args.tenant), limit=args.limit)
    print(f"{args.tenant}: {page['total']} numbers opted out")
    for entry in page["opt_outs"]:  # type: ignore[attr-defined]
        print(f"{entry['phone']:<15} {entry['source']:<8} {entry['created_at']}")
    return 0


def new_tenant(conn: Any, name: str) -> int:
    """`create_tenant`, with a taken name refused in words (CommandError)."""
    import psycopg

    from cli.exits import CommandError, Exit
    from engine.accounts.tenants import create_tenant

    try:
        return create_tenant(conn, name)
    except psycopg.errors.UniqueViolation:
        raise CommandError(
            f"a tenant named {name!r} already exists: choose another name", Exit.REFUSED
        ) from None


def new_sender(conn: Any, tenant_id: int, number: str) -> str:
    """`add_sender` (approved), with a number that is no sender number refused in words."""
    from cli.exits import CommandError, Exit
    from engine.accounts.tenants import add_sender
    from engine.intake.phone import InvalidPhone

    try:
        return add_sender(conn, tenant_id, number)
    except InvalidPhone as exc:
        raise CommandError(f"sender number {number!r}: {exc}", Exit.USAGE) from None


def cmd_init(args: argparse.Namespace) -> int:
    """A tenant ready to send: the tenant, its approved sender number, its points and an API key
    (printed once, on stdout; what to do next on stderr)."""
    from cli.stack import first_job_curl
    from engine.accounts.tenants import create_api_key

    settings = get_settings()
    with _connect() as conn, conn.transaction():
        tenant_id = new_tenant(conn, args.tenant)
        number = new_sender(conn, tenant_id, args.sender)
        balance = (
            billing.top_up(conn, tenant_id, args.top_up, memo="balsong init") if args.top_up else Decimal(0)
        )
        key = create_api_key(conn, tenant_id, args.scopes)
    print(
        f"tenant {args.tenant} (id {tenant_id}): sender {number} approved, balance {balance} points;"
        f" its API key (scopes {','.join(args.scopes)}; shown once, stored hashed):",
        file=sys.stderr,
    )
    print(key, flush=True)
    print(
        "\na first job (with the stack running: make run):\n\n"
        f"{first_job_curl(settings.api_url, key, number)}\n\n"
        f"console: {settings.api_url}/console (sign in with the key)",
        file=sys.stderr,
    )
    return 0


def register(sub: Any, tenant: Any, sender: Any) -> None:
    """Add the commands to the CLI's parsers (``sub``: top level; ``tenant``/``sender``: theirs)."""
    init = sub.add_parser(
        "init",
        help="a tenant ready to send: tenant, approved sender number, points and an API key (printed once)",
    )
    init.add_argument("tenant", help="the new tenant's unique name")
    init.add_argument(
        "--sender", required=True, help="its sender number, registered approved, e.g. 02-1234-5678"
    )
    init.add_argument(
        "--top-up",
        type=_amount,
        default=None,
        metavar="POINTS",
        help="points to put on its balance (default: none)",
    )
    init.add_argument(
        "--scopes",
        type=parse_scopes,
        default="send,read",
        help="the key's scopes, comma-separated: " + ",".join(ALL_SCOPES) + " (default: send,read)",
    )
    init.set_defaults(handler=cmd_init)

    top_up = tenant.add_parser("top-up", help="add points to a tenant's balance")
    top_up.add_argument("tenant", help="the tenant's name")
    top_up.add_argument("amount", type=_amount, help="points: digits, at most two decimals")
    top_up.add_argument("--memo", help="a note kept with the ledger entry")
    top_up.set_defaults(handler=cmd_top_up)

    adjust = tenant.add_parser("adjust", help="correct a balance (a signed amount, with the reason)")
    adjust.add_argument("tenant", help="the tenant's name")
    adjust.add_argument("amount", type=_signed_amount, help="points, '-' to take away: e.g. -120.50")
    adjust.add_argument("memo", help="why the balance is corrected (kept in the ledger)")
    adjust.set_defaults(handler=cmd_adjust)

    balance = tenant.add_parser(
        "balance", help="a tenant's balance and prices (exit 1 if it is not the ledger's sum)"
    )
    balance.add_argument("tenant", help="the tenant's name")
    balance.set_defaults(handler=cmd_balance)

    price = tenant.add_parser("price", help="a tenant's own unit price for a channel")
    price.add_argument("tenant", help="the tenant's name")
    price.add_argument("channel", choices=billing.PRICED_CHANNELS, help="the priced channel")
    price.add_argument("price", type=_points, help="points per message")
    price.set_defaults(handler=cmd_price)

    limits = tenant.add_parser("limits", help="show or set a tenant's intake limits")
    limits.add_argument("tenant", help="the tenant's name")
    limits.add_argument("--requests-per-second", type=float, help="job submissions per second (0: no limit)")
    limits.add_argument("--recipients-per-day", type=int, help="recipients accepted per day (0: no limit)")
    limits.add_argument(
        "--max-bytes-in-flight", type=int, help="job request bytes in flight at once (0: no limit)"
    )
    limits.add_argument(
        "--max-concurrent", type=int, help="job submissions in progress at once (0: no limit)"
    )
    limits.add_argument("--reset", action="store_true", help="back to the settings' limits")
    limits.set_defaults(handler=cmd_limits)

    for state, verb in (("approved", "approve"), ("blocked", "block"), ("pending", "unapprove")):
        assert state in SENDER_STATES
        p = sender.add_parser(verb, help=f"mark a registered sender number {state}")
        p.add_argument("tenant", help="the tenant's name")
        p.add_argument("number", help="the sender number, e.g. 02-1234-5678")
        p.set_defaults(handler=cmd_sender_state, state=state)
    listing = sender.add_parser("list", help="a tenant's sender numbers and their states")
    listing.add_argument("tenant", help="the tenant's name")
    listing.set_defaults(handler=cmd_sender_list)

    key = sub.add_parser("key", help="a tenant's API keys").add_subparsers(dest="key_command", required=True)
    for name, help_ in (
        ("list", "the tenant's keys (prefix, scopes, state)"),
        ("create", "a new key (printed once)"),
        ("rotate", "a new key with an old one's scopes; the old one is revoked"),
        ("revoke", "revoke a key"),
    ):
        p = key.add_parser(name, help=help_)
        p.add_argument("tenant", help="the tenant's name")
        if name in ("rotate", "revoke"):
            p.add_argument("key_id", type=int, help="the key's id (balsong key list)")
        if name == "create":
            p.add_argument(
                "--scopes",
                type=parse_scopes,
                default="send,read",
                help="comma-separated: " + ",".join(ALL_SCOPES),
            )
        p.set_defaults(handler=cmd_key)

    platform = sub.add_parser(
        "platform-key", help="the operator's API keys (they top up any tenant; no tenant key can)"
    ).add_subparsers(dest="platform_key_command", required=True)
    made = platform.add_parser("create", help="a new platform key (printed once)")
    made.add_argument("name", help="who or what holds it, e.g. 'billing-service'")
    platform.add_parser("list", help="every platform key (prefix, name, state)")
    revoked = platform.add_parser("revoke", help="revoke a platform key")
    revoked.add_argument("key_id", type=int, help="the platform key's id (balsong platform-key list)")
    for p in (made, revoked, platform.choices["list"]):
        p.set_defaults(handler=cmd_platform_key)

    opt_out = sub.add_parser("opt-out", help="advertising opt-out lists").add_subparsers(
        dest="opt_out_command", required=True
    )
    imported = opt_out.add_parser("import", help="add the numbers of a CSV or XLSX file (first column)")
    imported.add_argument("tenant", help="the tenant's name")
    imported.add_argument("file", help="a CSV or XLSX file whose first column holds phone numbers")
    imported.set_defaults(handler=cmd_opt_out_import)
    shown = opt_out.add_parser("list", help="the latest numbers on a tenant's list (masked)")
    shown.add_argument("tenant", help="the tenant's name")
    shown.add_argument("--limit", type=int, default=100, help="show at most this many numbers (default: 100)")
    shown.set_defaults(handler=cmd_opt_out_list)
