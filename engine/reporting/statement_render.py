"""The send statement (발송내역서) as a printable HTML page, and as PDF from the same HTML.

One HTML document serves both: on screen it has a print button; its print CSS (A4, no button,
table headers repeated on each page) is what the browser's print and the PDF use. The PDF is
rendered by WeasyPrint with a Korean font from the system (Debian ``fonts-nanum``, installed by
``scripts/ensure-system-packages.sh``); without a Hangul font the PDF would show empty boxes.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from html import escape

from engine.clock import KST
from engine.intake.phone import InvalidPhone, format_phone
from engine.lifecycle.statuses import JOB_STATUS_LABELS
from engine.reporting.exports import CHANNEL_LABELS, KIND_LABELS
from engine.reporting.statement import ChannelCounts, Statement

RESULT_LABELS = {
    "delivered": "성공",
    "failed": "실패",
    "expired": "만료",
    "fallback": "대체발송",
    "unknown": "결과 미수신",
    "cancelled": "취소",
    "in_progress": "진행 중",
}
#: The line of recipients refused at intake (no channel: they were never sent).
REFUSED_LABEL = "접수 거부"

#: Fonts with Hangul, in order of preference: Debian's Nanum, then what desktops have.
FONT_FAMILY = "'NanumGothic', 'Noto Sans CJK KR', 'Malgun Gothic', 'Apple SD Gothic Neo', sans-serif"

_STYLE = f"""
@page {{ size: A4; margin: 18mm 15mm; }}
body {{ font-family: {FONT_FAMILY}; font-size: 10pt; color: #111; margin: 0 auto; max-width: 190mm; }}
h1 {{ font-size: 18pt; text-align: center; letter-spacing: 0.3em; margin: 0 0 6mm; }}
h2 {{ font-size: 11pt; margin: 7mm 0 2mm; border-bottom: 1px solid #333; padding-bottom: 1mm; }}
table {{ width: 100%; border-collapse: collapse; }}
th, td {{ border: 1px solid #999; padding: 1.5mm 2mm; }}
th {{ background: #eee; font-weight: bold; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.total td {{ font-weight: bold; background: #f6f6f6; }}
table.meta th {{ width: 28%; text-align: left; }}
thead {{ display: table-header-group; }}
tr {{ page-break-inside: avoid; }}
p.note {{ font-size: 8.5pt; color: #444; }}
.print {{ float: right; }}
@media print {{ .print {{ display: none; }} body {{ max-width: none; }} }}
"""


# The print button's handler: an inline script (a saved statement stays one self-contained file),
# allowed by its hash in the Content-Security-Policy, where an onclick attribute would be blocked.
_PRINT_SCRIPT = 'document.querySelector("button.print").addEventListener("click", () => window.print());'


def _csp_source(inline: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode() + "'"


#: The statement's inline style and script as Content-Security-Policy sources (their hashes).
STYLE_SOURCE = _csp_source(_STYLE)
SCRIPT_SOURCE = _csp_source(_PRINT_SCRIPT)


def render_html(statement: Statement) -> str:
    """The statement as a complete, self-contained HTML document (Korean labels)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="ko"><head><meta charset="utf-8">',
        f"<title>발송내역서 — {escape(statement.tenant)} — {escape(statement.subject)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        '<button class="print" type="button">인쇄</button>',
        "<h1>발송내역서</h1>",
        _meta(statement),
        "<h2>채널별 발송 결과</h2>",
        _channel_table(statement),
        '<p class="note">메시지 단위로 집계합니다. 알림톡이 실패해 SMS/LMS로 대체발송된 수신자는 '
        "알림톡 '대체발송' 1건과 SMS/LMS 1건으로 나뉘어 집계됩니다. "
        "접수 거부는 접수 단계에서 거부되어 발송되지 않은 수신자입니다. "
        "결과 미수신은 통신사가 접수했으나 기한 안에 결과를 알려 오지 않은 메시지로, "
        "통신사가 접수 시 과금하므로 환불되지 않습니다.</p>",
        "<h2>실패 사유</h2>",
        _reason_table(statement),
    ]
    if statement.charges:
        parts += ["<h2>요금 및 환불</h2>", _charge_table(statement)]
    parts.append(f'<p class="note">발행 시각: {_time(statement.issued_at)} (KST)</p>')
    parts.append(f"<script>{_PRINT_SCRIPT}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_pdf(statement: Statement) -> bytes:
    """The statement as PDF (A4), rendered from :func:`render_html`."""
    # Imported here: WeasyPrint loads Pango and fonts, which only statement requests need.
    from weasyprint import HTML

    pdf = HTML(string=render_html(statement)).write_pdf()
    assert pdf is not None
    return bytes(pdf)


def _meta(statement: Statement) -> str:
    end = _time(statement.period_end) if statement.period_end else "진행 중"
    rows = [
        ("고객사", escape(statement.tenant)),
        ("대상", escape(statement.subject)),
        ("기간 (KST)", f"{_time(statement.period_start)} ~ {end}"),
    ]
    job = statement.job
    if job is not None:
        rows += [
            ("유형", KIND_LABELS.get(job.kind, escape(job.kind))),
            ("상태", JOB_STATUS_LABELS.get(job.status, escape(job.status))),
            ("요청 채널", escape(CHANNEL_LABELS.get(job.channel, job.channel))),
            ("발신번호", escape(_phone(job.sender))),
        ]
        if job.title:
            rows.append(("제목", escape(job.title)))
    else:
        rows.append(("작업 수", f"{statement.jobs:,}"))
    rows.append(("수신자 수", f"{statement.recipients:,}"))
    body = "".join(f'<tr><th scope="row">{label}</th><td>{value}</td></tr>' for label, value in rows)
    return f'<table class="meta">{body}</table>'


def _channel_table(statement: Statement) -> str:
    head = _head_row("채널", *RESULT_LABELS.values(), "합계")
    lines = [_channel_row(_channel_label(c.channel), c) for c in statement.channels]
    lines.append(_channel_row("합계", statement.totals, css="total"))
    return f"<table><thead>{head}</thead><tbody>{''.join(lines)}</tbody></table>"


def _channel_row(label: str, counts: ChannelCounts, css: str = "") -> str:
    cells = "".join(f'<td class="n">{getattr(counts, name):,}</td>' for name in RESULT_LABELS)
    css_attr = f' class="{css}"' if css else ""
    return f'<tr{css_attr}><td>{label}</td>{cells}<td class="n">{counts.total:,}</td></tr>'


def _reason_table(statement: Statement) -> str:
    if not statement.reasons:
        return "<p>실패한 메시지가 없습니다.</p>"
    rows = "".join(
        f"<tr><td>{_channel_label(r.channel)}</td><td>{escape(r.reason_code)}</td>"
        f'<td>{escape(r.reason)}</td><td class="n">{r.count:,}</td></tr>'
        for r in statement.reasons
    )
    head = _head_row("채널", "사유 코드", "사유", "건수")
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _charge_table(statement: Statement) -> str:
    rows = "".join(
        f'<tr><td>{escape(c.description)}</td><td class="n">{_number(c.quantity)}</td>'
        f'<td class="n">{_number(c.unit_price)}</td><td class="n">{c.amount:,}</td></tr>'
        for c in statement.charges
    )
    total = sum(c.amount for c in statement.charges)
    head = _head_row("항목", "수량", "단가 (원)", "금액 (원)")
    footer = f'<tr class="total"><td colspan="3">합계</td><td class="n">{total:,}</td></tr>'
    return f"<table><thead>{head}</thead><tbody>{rows}{footer}</tbody></table>"


def _head_row(*labels: str) -> str:
    """A table's header row; ``scope`` tells a screen reader each heading is its column's."""
    return "<tr>" + "".join(f'<th scope="col">{label}</th>' for label in labels) + "</tr>"


def _number(value: object) -> str:
    return "" if value is None else f"{value:,}"


def _channel_label(channel: str | None) -> str:
    return REFUSED_LABEL if channel is None else escape(CHANNEL_LABELS.get(channel, channel))


def _phone(number: str) -> str:
    try:
        return format_phone(number)
    except InvalidPhone:
        return number


def _time(moment: datetime) -> str:
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")
