"""Advertising rules of Korean law (정보통신망법 제50조) that a job must meet.

- An advertising message starts with ``(광고)`` and carries a free way to opt out: a line
  ``무료수신거부 080-…`` (080 numbers are free to call).
- Advertising is not sent between 21:00 and 08:00 KST without the recipient's separate consent,
  which balsong does not track: a job submitted or reserved into those hours is refused, and a
  running one waits for the morning (its batches wait in the retry ledger until 08:00).
- A number that opted out of a tenant's advertising gets none (reason ``opted_out``).
- KakaoTalk AlimTalk carries information only, never advertising (that is FriendTalk).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from engine.accounts.opt_outs import OPT_OUT_LINE
from engine.clock import KST
from engine.errors import ValidationError

#: The label an advertising message must start with.
AD_LABEL = "(광고)"
#: Quiet hours for advertising, KST: from 21:00 to 08:00 the next morning.
QUIET_FROM = time(21, 0)
QUIET_UNTIL = time(8, 0)
#: Reason code of a recipient on the tenant's opt-out list.
OPTED_OUT = "opted_out"
OPTED_OUT_TEXT = "the number opted out of this sender's advertising"

_OPT_OUT_LINE = re.compile(OPT_OUT_LINE)


def check_advertisement(body: str, channel: str) -> None:
    """Raise ValidationError naming what an advertising message lacks."""
    if channel == "kakao":
        raise ValidationError(
            "advertisement",
            "KakaoTalk AlimTalk may carry information only, not advertising; send it by SMS/LMS",
            code="advertising_not_allowed",
        )
    if not body.lstrip().startswith(AD_LABEL):
        raise ValidationError(
            "body", f"an advertising message must start with {AD_LABEL}", code="advertising_label_missing"
        )
    if _OPT_OUT_LINE.search(body) is None:
        raise ValidationError(
            "body",
            "an advertising message must carry a free opt-out line: 무료수신거부 080-XXX-XXXX",
            code="advertising_opt_out_missing",
        )


def with_advertising_marks(body: str, opt_out_number: str) -> str:
    """``body`` with what an advertising message must carry added where it lacks it: the label
    in front, and a line ``무료수신거부 <opt_out_number>`` at the end (the number as given;
    `check_advertisement` judges the result)."""
    text = body.strip()
    if not text.startswith(AD_LABEL):
        text = f"{AD_LABEL}{text}"
    if _OPT_OUT_LINE.search(text) is None and opt_out_number.strip():
        text = f"{text}\n무료수신거부 {opt_out_number.strip()}"
    return text


def in_quiet_hours(moment: datetime) -> bool:
    """True from 21:00 to 08:00 KST, when advertising may not be sent."""
    local = moment.astimezone(KST).time()
    return local >= QUIET_FROM or local < QUIET_UNTIL


def quiet_hours_end(moment: datetime) -> datetime:
    """The 08:00 KST that ends the quiet hours ``moment`` falls in."""
    local = moment.astimezone(KST)
    morning = datetime.combine(local.date(), QUIET_UNTIL, KST)
    return morning if local.time() < QUIET_UNTIL else morning + timedelta(days=1)


def check_send_time(send_at: datetime, field: str) -> None:
    """Refuse advertising that would go out in the quiet hours."""
    if in_quiet_hours(send_at):
        raise ValidationError(
            field,
            "advertising may not be sent between 21:00 and 08:00 KST; reserve it for 08:00 or later",
            code="advertising_quiet_hours",
        )
