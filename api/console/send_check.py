"""The send page's check (발송하기, step 4): what confirming a draft would do, computed by the code
that will do it — `api.submission.prepare` (the engine's validation, classification and
advertising rules), `engine.intake.job_store.quote_job` (sender, opt-outs, cost) and the engine's
phone normalisation for the bad numbers by row — and the engine's refusals in the operator's words.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from api import submission
from api.console import labels, send_drafts
from api.console.labels import points
from api.console.send_drafts import Draft
from api.console.session import ConsoleSession
from engine.accounts import billing
from engine.errors import BalsongError, InsufficientBalance, IntakeLimited, ValidationError
from engine.intake import compliance, recipient_files
from engine.intake.intake import PreparedJob
from engine.intake.job_store import quote_job
from engine.intake.phone import InvalidPhone, normalize_recipient
from engine.intake.template import Template
from engine.runtime import get_runtime

#: Bad numbers listed by row on the check page (all are counted).
BAD_ROWS_SHOWN = 100
#: Recipients whose message is shown as it will read.
PREVIEWS = 3
#: The engine's refusals, in the operator's words (the engine's own reason follows).
REFUSALS = {
    "advertising_quiet_hours": (
        "광고성 메시지는 21:00~08:00(한국 시간)에 보낼 수 없습니다. 08:00 이후로 예약하세요."
    ),
    "advertising_label_missing": "광고성 메시지는 (광고)로 시작해야 합니다.",
    "advertising_opt_out_missing": "광고성 메시지에는 무료 수신거부 080 번호가 있어야 합니다.",
    "advertising_not_allowed": "알림톡으로는 광고를 보낼 수 없습니다. 문자(SMS/LMS)로 보내세요.",
    "content_too_long": "내용이 채널의 최대 길이를 넘습니다.",
    "unencodable_text": "문자(SMS/LMS)로 보낼 수 없는 글자(이모지 등)가 있습니다.",
    "template_not_found": "승인된 알림톡 템플릿이 아닙니다.",
    "template_not_approved": "승인되지 않은 알림톡 템플릿입니다.",
    "sender_not_registered": "승인된 발신번호가 아닙니다.",
    "invalid_sender": "발신번호 형식이 올바르지 않습니다.",
}
#: Reasons a recipient fails at intake other than its number's (`labels.PHONE_REFUSAL`), in Korean
#: (the engine's code is shown beside).
REASONS = {
    **labels.PHONE_REFUSAL,
    "invalid_phone": "잘못된 번호입니다",
    "missing_variable": "변수 값 없음",
    "unencodable_text": "보낼 수 없는 글자",
    "content_too_long": "내용이 너무 긺",
    "opted_out": "수신거부",
}


def refusal(exc: BalsongError) -> str:
    """The engine's refusal as the page says it: Korean first, the engine's reason after."""
    if isinstance(exc, InsufficientBalance):
        return (
            f"잔액이 부족합니다: 필요 {points(exc.needed)}, 잔액 {points(exc.available)}. "
            "충전한 뒤에 다시 시도하세요."
        )
    if isinstance(exc, ValidationError):
        lead = REFUSALS.get(exc.code, "입력값을 확인하세요.")
        if exc.field == "file":
            lead = "읽을 수 없는 파일입니다. .xlsx 또는 .csv 파일을 올리세요."
        return f"{lead} ({exc.field}: {exc.reason})"
    if isinstance(exc, IntakeLimited):
        return f"지금은 발송을 더 받을 수 없습니다. 잠시 후 다시 시도하세요. ({exc})"
    return f"요청을 처리하지 못했습니다. ({exc})"


def job_fields(draft: Draft, mapping: recipient_files.ColumnMapping) -> dict[str, Any]:
    """The draft as a job request, in POST /v1/jobs's fields."""
    compose = draft.compose
    fields: dict[str, Any] = {
        "sender": compose.get("sender", ""),
        "kind": "manual",
        "recipients": send_drafts.recipients(draft, mapping, get_runtime().settings.max_recipients_per_job),
    }
    if compose.get("mode") == "kakao":
        fields["channel"] = "kakao"
        fields["template_code"] = compose.get("template_code", "")
        if compose.get("fallback_body", "").strip():
            fallback = {
                "channel": compose.get("fallback_channel") or "auto",
                "body": compose["fallback_body"],
            }
            if compose.get("fallback_title", "").strip():
                fallback["title"] = compose["fallback_title"]
            fields["fallback"] = fallback
    else:
        fields["channel"] = compose.get("channel") or "auto"
        body = compose.get("body", "")
        if compose.get("advertisement"):
            body = compliance.with_advertising_marks(body, compose.get("opt_out_number", ""))
        fields["body"] = body
        if compose.get("title", "").strip():
            fields["title"] = compose["title"]
    if compose.get("advertisement"):
        fields["advertisement"] = True
    day, at = compose.get("scheduled_date", "").strip(), compose.get("scheduled_time", "").strip()
    if day or at:
        if not (day and at):
            raise ValidationError("scheduled_at", "give both the date and the time of a reservation")
        fields["scheduled_at"] = f"{day}T{at}"  # no offset: KST (engine.intake.reservations)
        del fields["kind"]  # a reservation is kind "scheduled", which intake gives it
    return fields


def prepared(draft: Draft, mapping: recipient_files.ColumnMapping) -> PreparedJob:
    return submission.prepare(job_fields(draft, mapping), body_sha256=draft.fingerprint(), origin="console")


def _bad_numbers(draft: Draft, mapping: recipient_files.ColumnMapping) -> tuple[int, list[dict[str, Any]]]:
    """How many rows have no number intake can send to, and the first ones with their row and
    reason (intake's own normalisation, `engine.intake.phone`)."""
    count = 0
    shown: list[dict[str, Any]] = []
    for number, row in send_drafts.numbered_rows(draft, mapping):
        raw = row[mapping.phone] if mapping.phone < len(row) else ""
        try:
            normalize_recipient(raw)
        except InvalidPhone as exc:
            count += 1
            if len(shown) < BAD_ROWS_SHOWN:
                shown.append(
                    {
                        "row": number,
                        "value": raw[:40],
                        "code": exc.code,
                        "reason": labels.phone_refusal(exc.code, exc.reason),
                    }
                )
    return count, shown


def check_result(draft: Draft, session: ConsoleSession) -> dict[str, Any]:
    """What confirming the draft would do, computed by the code that will do it."""
    mapping = draft.column_mapping
    assert mapping is not None
    rt = get_runtime()
    job = prepared(draft, mapping)
    tenant_id = session.principal.tenant_id
    with rt.pool.connection() as conn:
        quote = quote_job(conn, tenant_id=tenant_id, job=job, settings=rt.settings)
        balance = billing.balance(conn, tenant_id).balance
    bad_count, bad_rows = _bad_numbers(draft, mapping)
    failures = Counter(row.reason_code or "other" for row in job.invalid)
    fallback_channel = job.fallback.channel if job.fallback else None
    lines = []
    for channel, count, unit in (
        ("sms", len(job.sms), quote.prices.sms),
        ("lms", len(job.lms), quote.prices.lms),
        ("kakao", len(job.kakao), max(quote.prices.kakao, quote.prices.fallback(fallback_channel))),
    ):
        if count:
            lines.append({"channel": channel, "count": count, "unit": unit, "amount": unit * count})
    template = Template.parse(job.body)
    previews = [
        {"phone": row.phone, "text": template.render(row.values) if row.values else job.body}
        for row in job.valid_rows()[:PREVIEWS]
    ]
    return {
        "job": job,
        "rows": draft.rows - (1 if mapping.header else 0),
        "valid": len(job.valid_rows()),
        "bad_count": bad_count,
        "bad_rows": bad_rows,
        "failures": sorted(
            ((code, REASONS.get(code, code), n) for code, n in failures.items()), key=lambda item: -item[2]
        ),
        "duplicates": job.duplicates_removed,
        "opted_out": quote.opted_out,
        "lines": lines,
        "cost": quote.cost,
        "balance": balance,
        "after": balance - quote.cost,
        "short": quote.cost > balance,
        "previews": previews,
        "scheduled_at": job.scheduled_at.isoformat() if job.scheduled_at else None,
    }
