"""Operator accounts: the people of a tenant who sign in to the console (table ``operators``).

An operator has an email (unique across tenants, so an email and a password name one account),
an argon2id password hash (`engine.accounts.passwords`) and one role. A role is a set of the API's
scopes (:data:`ROLE_SCOPES`), so the console enforces it through the same table as API keys
(`api.scopes`) and no page needs to know about roles:

- ``viewer``: ``read`` — history, jobs, results (masked), statements;
- ``sender``: ``send`` + ``read`` — also cancel, resume, resend, replay callbacks;
- ``admin``: every tenant scope, ``admin`` and ``export:unmasked`` included — also the audit log.

Sign-in (:func:`sign_in`) counts failures in a row per account; the :data:`LOCK_AFTER_FAILURES`-th
locks it for :data:`LOCK_SECONDS` (its password is not even checked meanwhile), besides the
per-client throttle of `engine.accounts.sign_in_limits`. ``balsong operator unlock`` lifts a lock.

Every change to an operator is written to the audit log (`engine.accounts.audit`) in its own
transaction, by whoever ``actor`` names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection
from psycopg.errors import UniqueViolation

from engine.accounts import audit, passwords
from engine.accounts.audit import AuditAction
from engine.accounts.tenants import ALL_SCOPES, Principal
from engine.errors import AccountDisabled, AccountLocked, NotFound, ValidationError

#: What each role may do, as API scopes.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "sender": frozenset({"send", "read"}),
    "admin": frozenset(ALL_SCOPES),
}
ROLES = tuple(ROLE_SCOPES)
#: Korean names of the roles (the console's header and its 403 page).
ROLE_LABELS = {"viewer": "조회 전용", "sender": "발송 담당", "admin": "관리자"}
#: Failed sign-ins in a row that lock an account.
LOCK_AFTER_FAILURES = 5
#: How long a locked account stays locked (unless unlocked by an administrator first).
LOCK_SECONDS = 15 * 60
#: An email as the account's name: one ``@``, no space or control character, a dotted domain.
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
_COLUMNS = "id, tenant_id, email, role, session_epoch, created_at, last_sign_in_at, locked_until, disabled_at"


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    tenant_id: int
    email: str
    role: str
    #: Grows when the password is reset: sessions made before then end.
    session_epoch: int
    created_at: datetime
    last_sign_in_at: datetime | None
    locked_until: datetime | None
    disabled_at: datetime | None

    def principal(self) -> Principal:
        """The operator as a caller: their tenant, their role's scopes, their email as actor."""
        return Principal(self.tenant_id, None, ROLE_SCOPES[self.role], actor=self.email)

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


def _operator(row: Any) -> Operator:
    return Operator(
        id=int(row[0]),
        tenant_id=int(row[1]),
        email=str(row[2]),
        role=str(row[3]),
        session_epoch=int(row[4]),
        created_at=row[5],
        last_sign_in_at=row[6],
        locked_until=row[7],
        disabled_at=row[8],
    )


def normalise_email(email: str) -> str:
    """``email`` trimmed and in lower case; ValidationError on ``email`` unless it looks like one."""
    normalised = email.strip().lower()
    if len(normalised) > 254 or not _EMAIL.match(normalised):
        raise ValidationError("email", "이메일 주소 형식이 아닙니다 (예: kim@example.co.kr).")
    return normalised


def check_role(role: str) -> str:
    if role not in ROLE_SCOPES:
        raise ValidationError("role", f"역할은 {', '.join(ROLES)} 중 하나여야 합니다.")
    return role


# -- administration -------------------------------------------------------------------------------


def add_operator(
    conn: Connection[Any], tenant_id: int, email: str, role: str, password: str, *, actor: str
) -> Operator:
    """A new operator of the tenant.

    Raises:
      ValidationError: a malformed email (``email``), an unknown role (``role``), a password that
        breaks a rule (``password``, `engine.accounts.passwords`), or an email that already has an
        account, of this tenant or another (``email``).
    """
    email = normalise_email(email)
    check_role(role)
    password_hash = passwords.hash_password(passwords.check_password(password, email))
    try:
        with conn.transaction():
            row = conn.execute(
                f"INSERT INTO operators (tenant_id, email, role, password_hash) VALUES (%s, %s, %s, %s)"
                f" RETURNING {_COLUMNS}",
                (tenant_id, email, role, password_hash),
            ).fetchone()
            assert row is not None
            audit.record(
                conn,
                tenant_id=tenant_id,
                actor=actor,
                action=AuditAction.OPERATOR_ADD,
                subject=audit.operator_subject(email),
                details={"role": role},
            )
    except UniqueViolation:
        raise ValidationError("email", f"{email} 계정이 이미 있습니다.") from None
    return _operator(row)


def list_operators(conn: Connection[Any], tenant_id: int) -> list[Operator]:
    """The tenant's operators, by email, disabled ones included."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM operators WHERE tenant_id = %s ORDER BY email", (tenant_id,)
    ).fetchall()
    return [_operator(row) for row in rows]


def operator_by_id(conn: Connection[Any], operator_id: int) -> Operator | None:
    """An operator by id (a console session's), disabled or not; None if there is none."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM operators WHERE id = %s", (operator_id,)).fetchone()
    return None if row is None else _operator(row)


def _change(
    conn: Connection[Any],
    tenant_id: int,
    email: str,
    assignments: str,
    params: dict[str, Any],
    *,
    actor: str,
    action: AuditAction,
    details: Callable[[Operator], dict[str, Any]] | None = None,
) -> Operator:
    """Apply ``assignments`` to the tenant's operator ``email`` and audit it (``details`` made
    from the operator as they were); the operator as they were."""
    email = normalise_email(email)
    with conn.transaction():
        before = conn.execute(
            f"SELECT {_COLUMNS} FROM operators WHERE tenant_id = %s AND email = %s FOR UPDATE",
            (tenant_id, email),
        ).fetchone()
        if before is None:
            raise NotFound(f"no operator {email} in this tenant")
        conn.execute(f"UPDATE operators SET {assignments} WHERE id = %(id)s", {**params, "id": before[0]})
        audit.record(
            conn,
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            subject=audit.operator_subject(email),
            details=None if details is None else details(_operator(before)),
        )
    return _operator(before)


def set_role(conn: Connection[Any], tenant_id: int, email: str, role: str, *, actor: str) -> str:
    """Give the operator ``role``; their live sessions have its scopes from their next request.
    Returns the role they had. NotFound if the tenant has no such operator."""
    check_role(role)
    before = _change(
        conn,
        tenant_id,
        email,
        "role = %(role)s",
        {"role": role},
        actor=actor,
        action=AuditAction.OPERATOR_ROLE,
        details=lambda was: {"from": was.role, "to": role},
    )
    return before.role


def disable(conn: Connection[Any], tenant_id: int, email: str, *, actor: str) -> None:
    """Disable the operator: they cannot sign in, and their live sessions end at their next request."""
    _change(
        conn,
        tenant_id,
        email,
        "disabled_at = coalesce(disabled_at, now())",
        {},
        actor=actor,
        action=AuditAction.OPERATOR_DISABLE,
    )


def enable(conn: Connection[Any], tenant_id: int, email: str, *, actor: str) -> None:
    """Let a disabled operator sign in again."""
    _change(conn, tenant_id, email, "disabled_at = NULL", {}, actor=actor, action=AuditAction.OPERATOR_ENABLE)


def unlock(conn: Connection[Any], tenant_id: int, email: str, *, actor: str) -> None:
    """Lift a lock-out (and forget the failures that led to it)."""
    _change(
        conn,
        tenant_id,
        email,
        "locked_until = NULL, failed_sign_ins = 0",
        {},
        actor=actor,
        action=AuditAction.OPERATOR_UNLOCK,
    )


def reset_password(conn: Connection[Any], tenant_id: int, email: str, password: str, *, actor: str) -> None:
    """Give the operator a new password (which must meet the rules); their live sessions end,
    and a lock-out is lifted."""
    normalised = normalise_email(email)
    password_hash = passwords.hash_password(passwords.check_password(password, normalised))
    _change(
        conn,
        tenant_id,
        normalised,
        "password_hash = %(hash)s, session_epoch = session_epoch + 1, locked_until = NULL,"
        " failed_sign_ins = 0",
        {"hash": password_hash},
        actor=actor,
        action=AuditAction.OPERATOR_PASSWORD,
    )


# -- sign-in --------------------------------------------------------------------------------------


#: Where sign-in gets a database connection: a pool's ``connection`` (or, in a test, one
#: connection wrapped in ``contextlib.nullcontext``).
Connect = Callable[[], AbstractContextManager[Connection[Any]]]


def sign_in(
    connect: Connect, email: str, password: str, now: datetime, *, client: str | None = None
) -> Operator | None:
    """The operator whose email and password these are; None if there is no such account or the
    password is wrong (which counts towards a lock-out). No account and a wrong password take
    as long (a dummy hash is verified), so timing does not tell which emails have accounts.

    No connection is held while the password is hashed (tens of milliseconds, and a flood of
    sign-ins waits for `engine.accounts.passwords`' few hashing slots): ``connect`` is called
    once to read the account and once to record the outcome.

    Raises:
      AccountLocked: the account is locked (the password was not checked), or this failure locked it.
      AccountDisabled: the password is right, but the account has been disabled.
    """
    try:
        email = normalise_email(email)
    except ValidationError:
        passwords.verify_password(None, password)
        return None
    with connect() as conn:
        row = conn.execute(
            f"SELECT {_COLUMNS}, password_hash FROM operators WHERE email = %s", (email,)
        ).fetchone()
    if row is None:
        passwords.verify_password(None, password)
        return None
    operator, password_hash = _operator(row), str(row[-1])
    if operator.locked(now):
        assert operator.locked_until is not None
        raise AccountLocked(operator.locked_until)
    if not passwords.verify_password(password_hash, password):
        with connect() as conn:
            _failed(conn, operator, now, client)
        return None
    if operator.disabled_at is not None:
        raise AccountDisabled
    rehashed = passwords.hash_password(password) if passwords.needs_rehash(password_hash) else None
    with connect() as conn:
        # Only if no concurrent failure locked it meanwhile.
        done = conn.execute(
            """
            UPDATE operators SET failed_sign_ins = 0, last_sign_in_at = %(now)s,
                                 password_hash = coalesce(%(rehashed)s, password_hash)
            WHERE id = %(id)s AND (locked_until IS NULL OR locked_until <= %(now)s)
            RETURNING id
            """,
            {"now": now, "rehashed": rehashed, "id": operator.id},
        ).fetchone()
        if done is None:
            raise AccountLocked(_locked_until(conn, operator.id, now))
    return operator


def _failed(conn: Connection[Any], operator: Operator, now: datetime, client: str | None) -> None:
    """Count a failure; lock the account if it is the LOCK_AFTER_FAILURES-th in a row (and raise)."""
    until = now + timedelta(seconds=LOCK_SECONDS)
    with conn.transaction():
        row = conn.execute(
            """
            UPDATE operators SET
                failed_sign_ins = CASE WHEN failed_sign_ins + 1 >= %(limit)s THEN 0
                                       ELSE failed_sign_ins + 1 END,
                locked_until = CASE WHEN failed_sign_ins + 1 >= %(limit)s THEN %(until)s
                                    ELSE locked_until END
            WHERE id = %(id)s AND (locked_until IS NULL OR locked_until <= %(now)s)
            RETURNING locked_until
            """,
            {"limit": LOCK_AFTER_FAILURES, "until": until, "id": operator.id, "now": now},
        ).fetchone()
        if row is None:  # locked by a concurrent failure
            raise AccountLocked(_locked_until(conn, operator.id, now))
        if row[0] == until:
            audit.record(
                conn,
                tenant_id=operator.tenant_id,
                actor=f"sign-in from {client or 'unknown address'}",
                action=AuditAction.OPERATOR_LOCKED,
                subject=audit.operator_subject(operator.email),
                details={"failures": LOCK_AFTER_FAILURES, "locked_until": until.isoformat()},
            )
    if row[0] == until:
        raise AccountLocked(until)


def _locked_until(conn: Connection[Any], operator_id: int, now: datetime) -> datetime:
    row = conn.execute("SELECT locked_until FROM operators WHERE id = %s", (operator_id,)).fetchone()
    return row[0] if row is not None and row[0] is not None else now + timedelta(seconds=LOCK_SECONDS)
