"""The audit log: who did what to a tenant's account, and when (table ``audit_log``, migration 0022).

One function writes it, :func:`record`, called in the transaction of the action it records
where practical (a cancel, a top-up, a role change ...), so an action is never done without its
row nor a row written for an action that rolled back. The log is append-only (a trigger refuses
UPDATE and DELETE).

Who — ``actor`` — is a person or a key, written so a reader knows which:

- an operator signed in to the console: their email (``kim@acme.kr``);
- an API key (the API, or the console signed in with a key): ``API key bsk_AbCdEf``, its
  visible prefix (`key_actor`);
- a platform key (top-ups): ``platform key billing-service (bsp_AbCdEf)`` (`platform_actor`);
- the operator's command line: ``CLI (root)``, with the OS user who ran it (`cli_actor`).

What — ``action`` — is one of :class:`AuditAction`. ``subject`` names what it was done to
(`job_subject`, `sender_subject`, `operator_subject`); ``details`` holds the rest as JSON (a
resend's new job, an amount and its memo, a role before and after).
"""

from __future__ import annotations

import getpass
from enum import StrEnum
from typing import Any

import orjson
from psycopg import Connection
from psycopg.types.json import Jsonb


class AuditAction(StrEnum):
    """What was done. The console's Korean labels are keyed by these (`api.console.audit`)."""

    JOB_SUBMIT = "job.submit"
    JOB_RESEND = "job.resend"
    JOB_CANCEL = "job.cancel"
    JOB_RESUME = "job.resume"
    CALLBACKS_REPLAY = "job.callbacks_replay"
    EXPORT_UNMASKED = "export.unmasked"
    BALANCE_TOP_UP = "balance.top_up"
    BALANCE_ADJUST = "balance.adjust"
    SENDER_ADD = "sender.add"
    SENDER_REQUEST = "sender.request"
    SENDER_APPROVE = "sender.approve"
    SENDER_BLOCK = "sender.block"
    SENDER_UNAPPROVE = "sender.unapprove"
    OPERATOR_ADD = "operator.add"
    OPERATOR_ROLE = "operator.role"
    OPERATOR_DISABLE = "operator.disable"
    OPERATOR_ENABLE = "operator.enable"
    OPERATOR_UNLOCK = "operator.unlock"
    OPERATOR_PASSWORD = "operator.password"
    OPERATOR_LOCKED = "operator.locked"


#: Korean labels of the actions: the console's filter and table, and the CSV download.
ACTION_LABELS: dict[AuditAction, str] = {
    AuditAction.JOB_SUBMIT: "발송 요청",
    AuditAction.JOB_RESEND: "실패 재발송",
    AuditAction.JOB_CANCEL: "발송 취소",
    AuditAction.JOB_RESUME: "발송 재개",
    AuditAction.CALLBACKS_REPLAY: "결과 콜백 재전송",
    AuditAction.EXPORT_UNMASKED: "전체 번호 내려받기",
    AuditAction.BALANCE_TOP_UP: "포인트 충전",
    AuditAction.BALANCE_ADJUST: "포인트 조정",
    AuditAction.SENDER_ADD: "발신번호 등록(승인)",
    AuditAction.SENDER_REQUEST: "발신번호 등록 요청",
    AuditAction.SENDER_APPROVE: "발신번호 승인",
    AuditAction.SENDER_BLOCK: "발신번호 차단",
    AuditAction.SENDER_UNAPPROVE: "발신번호 승인 취소",
    AuditAction.OPERATOR_ADD: "운영자 추가",
    AuditAction.OPERATOR_ROLE: "운영자 역할 변경",
    AuditAction.OPERATOR_DISABLE: "운영자 사용 중지",
    AuditAction.OPERATOR_ENABLE: "운영자 사용 재개",
    AuditAction.OPERATOR_UNLOCK: "운영자 잠금 해제",
    AuditAction.OPERATOR_PASSWORD: "운영자 비밀번호 재설정",
    AuditAction.OPERATOR_LOCKED: "로그인 실패로 계정 잠김",
}

#: The actor of everything done with the ``balsong`` command line (the OS user follows).
CLI = "CLI"
#: Most characters of an actor or a subject (the table's limit).
MAX_TEXT = 320


def key_actor(prefix: str) -> str:
    """The actor of a tenant's API key, by its visible prefix (`engine.accounts.tenants.key_prefix`)."""
    return f"API key {prefix}"


def platform_actor(name: str, prefix: str) -> str:
    """The actor of a platform key: its holder's name and visible prefix."""
    return f"platform key {name} ({prefix})"


def job_subject(job_id: int) -> str:
    return f"job:{job_id}"


def sender_subject(number: str) -> str:
    return f"sender:{number}"


def operator_subject(email: str) -> str:
    return f"operator:{email}"


def cli_actor() -> str:
    """The actor of a CLI action: ``CLI (kim)``, with the OS user who ran it (the CLI has no
    sign-in of its own; the machine's login is who it was)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        return CLI
    return f"{CLI} ({user})"


def record(
    conn: Connection[Any],
    *,
    tenant_id: int,
    actor: str,
    action: AuditAction | str,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write one row of the audit log, in ``conn``'s transaction if one is open.

    Parameters:
      tenant_id: the tenant whose account the action touched (a top-up: the tenant topped up).
      actor: who (see the module doc); never empty.
      action: an :class:`AuditAction` (a code that is none is refused: a typo would hide rows
        from the console's filter).
      subject: what the action was done to (``job:123``, ``sender:0212345678`` ...).
      details: anything else worth keeping, as JSON (decimals and dates as text).

    Raises:
      ValueError: an empty actor or an unknown action.
    """
    if not actor.strip():
        raise ValueError("an audit entry needs an actor")
    code = AuditAction(action)  # ValueError for an unknown code
    conn.execute(
        "INSERT INTO audit_log (tenant_id, actor, action, subject, details) VALUES (%s, %s, %s, %s, %s)",
        (
            tenant_id,
            actor[:MAX_TEXT],
            code.value,
            None if subject is None else subject[:MAX_TEXT],
            None if details is None else Jsonb(details, dumps=_dumps),
        ),
    )


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()
