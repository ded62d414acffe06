"""`balsong tenant callback TENANT [URL | --clear]` and `balsong tenant callback-secret TENANT
[--rotate]`: where a tenant's status callbacks go by default, and the secret they are signed
with (see engine.callbacks)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from engine.accounts.tenants import tenant_id_by_name
from engine.callbacks.settings import (
    ROTATION_OVERLAP,
    callback_url,
    current_secret,
    rotate_secret,
    set_callback_url,
)
from engine.callbacks.urls import CallbackUrlRefused, check_callback_url
from engine.config import get_settings


def _connect() -> Any:
    import psycopg

    return psycopg.connect(get_settings().database_url, autocommit=True)


def cmd_callback(args: argparse.Namespace) -> int:
    settings = get_settings()
    with _connect() as conn:
        tenant_id = tenant_id_by_name(conn, args.tenant)
        if args.clear:
            set_callback_url(conn, tenant_id, None)
        elif args.url is not None:
            try:
                url = check_callback_url(
                    args.url, allow_http=settings.callback_allow_http, own_api_url=settings.api_url
                )
            except CallbackUrlRefused as exc:
                print(f"callback URL refused: {exc}", file=sys.stderr)
                return 2
            set_callback_url(conn, tenant_id, url)
        shown = callback_url(conn, tenant_id)
    print(f"{args.tenant}: callbacks go to {shown}" if shown else f"{args.tenant}: no default callback URL")
    return 0


def cmd_callback_secret(args: argparse.Namespace) -> int:
    with _connect() as conn:
        tenant_id = tenant_id_by_name(conn, args.tenant)
        if args.rotate:
            secret = rotate_secret(conn, tenant_id, datetime.now(UTC))
            hours = ROTATION_OVERLAP.total_seconds() / 3600
            print(
                f"the previous secret stays valid for {hours:g} hours: switch your receiver", file=sys.stderr
            )
        else:
            secret = current_secret(conn, tenant_id)
    print(secret)
    return 0


def register(tenant: Any) -> None:
    """Add the commands to the ``balsong tenant`` parser."""
    callback = tenant.add_parser("callback", help="show, set or clear a tenant's default callback URL")
    callback.add_argument("tenant", help="the tenant's name")
    callback.add_argument("url", nargs="?", help="https URL the tenant's status callbacks go to")
    callback.add_argument("--clear", action="store_true", help="no default callback URL")
    callback.set_defaults(handler=cmd_callback)

    secret = tenant.add_parser(
        "callback-secret", help="the secret a tenant's callbacks are signed with (Balsong-Signature)"
    )
    secret.add_argument("tenant", help="the tenant's name")
    secret.add_argument("--rotate", action="store_true", help="a new secret; the old one stays valid 24 h")
    secret.set_defaults(handler=cmd_callback_secret)
