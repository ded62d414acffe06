"""docs/api.md's generated tables: reason codes, statuses, problem codes.

The page is written by hand (how to call the API, a worked example per endpoint group) except for
the blocks between ``<!-- BEGIN GENERATED name -->`` and ``<!-- END GENERATED name -->``, made here
from the code that defines what they list:

- ``reasons``: every reason code a recipient can end with (`engine.reason_codes`), balsong's own
  and each provider's, in Korean and English, with what to do;
- ``statuses``: every recipient and job status (`engine.lifecycle.statuses`), its Korean label
  and meaning (the member's ``#:`` comment, else `_STATUS_NOTES`);
- ``problems``: every ``code`` of an error answer (`PROBLEM_CODES`; a unit test finds every code
  the API and engine can answer and holds this table to them).

    python -m api.reference_doc --write    # update docs/api.md
    python -m api.reference_doc --check    # exit 1 if docs/api.md is out of date
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Final, NamedTuple

from engine import reason_codes
from engine.generated_docs import check_or_write
from engine.lifecycle import statuses
from engine.lifecycle.statuses import (
    FAILED_RECIPIENT_STATUSES,
    FINAL_RECIPIENT_STATUSES,
    FINISHED_JOB_STATUSES,
    JOB_STATUS_LABELS,
    RECIPIENT_STATUS_LABELS,
    JobStatus,
    RecipientStatus,
)
from engine.reason_codes import Reason

#: The page, from the repository's root.
DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "api.md"


class Problem(NamedTuple):
    """One ``code`` of an error answer."""

    status: int
    meaning: str
    action: str


#: Every problem ``code``, its HTTP status, what it means and what to do.
PROBLEM_CODES: Final[dict[str, Problem]] = {
    "invalid": Problem(422, "A value is not valid; `field` names it", "Fix the field and send again."),
    "unknown_field": Problem(
        422, "The body has a field the API does not know (often a misspelling)", "Remove or correct it."
    ),
    "control_character": Problem(422, "A control character in a text field", "Remove it."),
    "invalid_sender": Problem(422, "The sender is not a phone number", "Send a registered sender number."),
    "sender_not_registered": Problem(
        422,
        "The sender number is not registered for this tenant (pre-registration is required by law)",
        "Register it (`POST /v1/senders` with an admin key, or `balsong sender add`).",
    ),
    "content_too_long": Problem(
        422, "The body or title is over the channel's limit", "Shorten it, or use `lms` / `auto`."
    ),
    "unencodable_text": Problem(
        422,
        "The body or title has a character SMS/LMS cannot carry (EUC-KR), an emoji for example",
        "Remove the character `detail` names.",
    ),
    "template_not_found": Problem(422, "No such AlimTalk template for the sender key", "Check the code."),
    "template_not_approved": Problem(
        422, "The AlimTalk template is not approved", "Wait for approval, or use an approved one."
    ),
    "advertising_label_missing": Problem(
        422, "An advertising message must start with (광고)", "Start the body with `(광고)`."
    ),
    "advertising_opt_out_missing": Problem(
        422, "An advertising message must carry a free 080 opt-out line", "Add the 080 line."
    ),
    "advertising_quiet_hours": Problem(
        422,
        "Advertising may not be sent 21:00-08:00 KST (the reservation falls in the ban)",
        "Reserve it for 08:00 KST or later.",
    ),
    "advertising_not_allowed": Problem(
        422, "KakaoTalk AlimTalk carries information only, not advertising", "Send it by SMS/LMS."
    ),
    "invalid_cursor": Problem(
        422, "The cursor is not one this API returned for this list", "Start the list again without it."
    ),
    "nothing_to_resend": Problem(422, "The job has no failure to resend (with those reasons)", "None."),
    "idempotency_key_reused": Problem(
        422,
        "The Idempotency-Key was used before for a different request",
        "Use a new key for a new request; the same key only to repeat the same request.",
    ),
    "invalid_webhook": Problem(
        422, "A carrier report the webhook cannot read (providers only)", "Nothing: the provider's."
    ),
    "request_too_large": Problem(413, "The body is over the size limit", "Split the job into smaller ones."),
    "client_disconnected": Problem(
        400, "The body ended before it was whole", "Send it again (with the same Idempotency-Key)."
    ),
    "unauthorised": Problem(
        401, "No API key, or an unknown or revoked one", "Send `Authorization: Bearer bsk_...`."
    ),
    "bad_signature": Problem(
        401, "A carrier webhook without the right signature (providers only)", "Check the webhook settings."
    ),
    "forbidden": Problem(
        403, "The key lacks the scope this needs", "Use a key with the scope `detail` names."
    ),
    "insufficient_balance": Problem(
        402,
        "The balance is short of the job's cost (`needed`, `available`)",
        "Top the balance up (the platform operator does), or send fewer recipients.",
    ),
    "not_found": Problem(
        404, "No such route, or no such job (or not this tenant's)", "Check the path and id."
    ),
    "method_not_allowed": Problem(
        405, "The route does not take this method (`Allow` lists those it does)", "-"
    ),
    "http_error": Problem(400, "Another HTTP-level refusal (status as answered)", "Read `detail`."),
    "job_not_paused": Problem(409, "Resume asked of a job that is not paused", "None: it is already going."),
    "job_finished": Problem(409, "The job has finished: it cannot be cancelled", "None."),
    "job_not_finished": Problem(409, "Resend asked of a job that has not finished", "Wait for it to finish."),
    "resend_in_progress": Problem(
        409, "A resend of the same failures is still running (`job_id` names it)", "Wait for it."
    ),
    "no_callback_url": Problem(409, "Replay asked of a job without a callback URL", "Set one first."),
    "idempotency_key_in_progress": Problem(
        409, "A request with this Idempotency-Key is still being processed", "Retry after a moment."
    ),
    "too_many_requests": Problem(
        429, "Over the tenant's submissions per second, or its intake budget (`limit`)", "Wait `Retry-After`."
    ),
    "daily_recipient_limit": Problem(
        429,
        "Over the tenant's recipients per day (`limit`)",
        "Wait `Retry-After`, or ask for a higher limit.",
    ),
    "too_many_attempts": Problem(
        429, "Too many failed sign-ins or unknown keys from this address", "Wait `Retry-After`."
    ),
    "unavailable": Problem(
        503, "PostgreSQL or Redis is unavailable; nothing was accepted", "Retry after `Retry-After` seconds."
    ),
    "internal": Problem(
        500, "balsong failed; the failure is logged with `request_id`", "Report `request_id`."
    ),
}

#: Meanings of statuses whose member has no ``#:`` comment in `engine.lifecycle.statuses`.
_STATUS_NOTES: Final[dict[str, str]] = {
    "recipient:delivered": "The carrier reported it delivered to the handset (or KakaoTalk).",
    "recipient:failed": "The carrier refused it or reported it undelivered, or it was never sendable"
    " (its reason says which); refunded at settlement.",
    "job:accepted": "Stored and paid for (its cost reserved); being planned into batches.",
    "job:sending": "Batches are with the workers and carriers.",
    "job:completed": "Finished; no recipient failed or expired (unknown results allowed).",
    "job:partially_failed": "Finished; some recipients failed or expired, some did not.",
    "job:cancelled": "Cancelled by its tenant or an operator; what was already with a carrier is reported.",
}


def _member_comments(enum: type[StrEnum]) -> dict[str, str]:
    """Each member's ``#:`` comment block in the statuses module, joined into one line."""
    source = inspect.getsource(statuses)
    lines = source.splitlines()
    tree = ast.parse(source)
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == enum.__name__).body
    found: dict[str, str] = {}
    for node in body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            block: list[str] = []
            row = node.lineno - 2
            while row >= 0 and lines[row].strip().startswith("#:"):
                block.insert(0, lines[row].strip()[2:].strip())
                row -= 1
            if block:
                found[enum[node.targets[0].id].value] = " ".join(block)
    return found


def status_meaning(kind: str, status: StrEnum) -> str:
    """What ``status`` (a ``recipient`` or ``job`` one) means."""
    comments = _member_comments(RecipientStatus if kind == "recipient" else JobStatus)
    return comments.get(status.value) or _STATUS_NOTES[f"{kind}:{status.value}"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows),
    ]


def _reason_rows(reasons: Iterable[Reason]) -> list[list[str]]:
    return [[f"`{r.code}`", ", ".join(f"`{s}`" for s in r.statuses), r.ko, r.en, r.action] for r in reasons]


def reasons_block() -> list[str]:
    header = ("code", "status", "한국어", "English", "what to do")
    return [
        "### balsong's own",
        "",
        *_table(header, _reason_rows(reason_codes.OWN_REASONS)),
        "",
        "### NHN Cloud SMS / LMS (`channel` `sms` or `lms`)",
        "",
        *_table(header, _reason_rows(reason_codes.sms_reasons())),
        "",
        "### NHN Cloud KakaoTalk AlimTalk (`channel` `kakao`)",
        "",
        *_table(header, _reason_rows(reason_codes.kakao_reasons())),
    ]


#: Final recipient statuses that are charged at settlement (`engine.lifecycle.settlement`: the
#: provider charges a message it accepted, whatever it reports later or never); every other final
#: status is refunded.
_CHARGED: Final = frozenset({RecipientStatus.DELIVERED, RecipientStatus.UNKNOWN})


def _charge(status: RecipientStatus) -> str:
    if status is RecipientStatus.FALLBACK:
        return "no: its SMS/LMS row is, at the fallback price"
    if status not in FINAL_RECIPIENT_STATUSES:
        return "reserved"
    return "yes" if status in _CHARGED else "no: refunded"


def statuses_block() -> list[str]:
    recipient_rows = [
        [
            f"`{s}`",
            RECIPIENT_STATUS_LABELS[s],
            "yes" if s in FINAL_RECIPIENT_STATUSES else "no",
            "yes" if s in FAILED_RECIPIENT_STATUSES else "no",
            _charge(s),
            status_meaning("recipient", s),
        ]
        for s in RecipientStatus
    ]
    job_rows = [
        [
            f"`{s}`",
            JOB_STATUS_LABELS[s],
            "yes" if s in FINISHED_JOB_STATUSES else "no",
            status_meaning("job", s),
        ]
        for s in JobStatus
    ]
    return [
        "### Recipient statuses",
        "",
        *_table(("status", "한국어", "final", "counts as failed", "charged", "meaning"), recipient_rows),
        "",
        "### Job statuses",
        "",
        *_table(("status", "한국어", "finished", "meaning"), job_rows),
    ]


def problems_block() -> list[str]:
    rows = [
        [f"`{code}`", str(p.status), p.meaning, p.action]
        for code, p in sorted(PROBLEM_CODES.items(), key=lambda item: (item[1].status, item[0]))
    ]
    return _table(("code", "status", "meaning", "what to do"), rows)


#: Each generated block by name.
BLOCKS: Final[dict[str, Callable[[], list[str]]]] = {
    "reasons": reasons_block,
    "statuses": statuses_block,
    "problems": problems_block,
}


def begin(name: str) -> str:
    return f"<!-- BEGIN GENERATED {name}: python -m api.reference_doc --write; do not edit by hand -->"


def end(name: str) -> str:
    return f"<!-- END GENERATED {name} -->"


def updated(page: str) -> str:
    """``page`` with each generated block made again."""
    for name, make in BLOCKS.items():
        pattern = re.compile(re.escape(begin(name)) + r".*?" + re.escape(end(name)), re.DOTALL)
        if len(pattern.findall(page)) != 1:
            raise ValueError(f"{DOC_PATH.name}: the markers of block {name!r} must be there exactly once")
        block = "\n".join([begin(name), "", *make(), "", end(name)])
        head, _, tail = page.partition(begin(name))
        page = head + block + tail.partition(end(name))[2]
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.reference_doc", description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help=f"update {DOC_PATH.name}")
    action.add_argument("--check", action="store_true", help=f"exit 1 if {DOC_PATH.name} is out of date")
    args = parser.parse_args(argv)
    return check_or_write(DOC_PATH, updated, "python -m api.reference_doc", check=args.check)


if __name__ == "__main__":
    sys.exit(main())
