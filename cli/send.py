"""``balsong send FILE``: a job from a CSV or XLSX file of recipients, through the API.

The file is read row by row (`engine.intake.recipient_files`, the console's reader) and its
recipients streamed into the request body as they are read, so a file of a million rows is never
held whole; the API validates the job exactly as any other (``POST /v1/jobs``), and its refusal
comes back as one line and an exit status. Once accepted, the job is followed with the same
progress bar as ``balsong status``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from cli.exits import JOB_STATUS_EXITS, CommandError, Exit
from cli.jobs import api_client
from engine.errors import ValidationError
from engine.intake.recipient_files import ColumnMapping, guess_mapping, kind_of, read_rows, recipient_of
from engine.intake.template import Template

#: The top-level fields of the job, from the command line (recipients come from the file).
_FIELDS = ("channel", "sender", "body", "title", "template_code", "kind", "scheduled_at", "reference")


def _mapping(first: list[str], body: str, args: argparse.Namespace) -> ColumnMapping:
    """The columns' meaning: guessed from a header row (or, without one, phone first, then the
    body's variables in order), with ``--no-header`` forcing the latter."""
    variables = Template.parse(body).variables if body else ()
    if args.no_header:
        return guess_mapping(["0"], len(first), variables)
    return guess_mapping(first, len(first), variables)


def _body(path: Path, fields: dict[str, Any], args: argparse.Namespace) -> tuple[Iterator[bytes], list[int]]:
    """The request body, made as the file is read; and a one-item list counting the recipients
    written so far (read by the caller after the request)."""
    kind = kind_of(path.name)
    counted = [0]

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as stream:
            rows = read_rows(stream, kind)
            first = next(rows, None)
            if first is None:
                raise CommandError(f"{path} holds no rows", Exit.USAGE)
            mapping = _mapping(first, str(fields.get("body") or ""), args)
            described = ", ".join(
                [f"phone=column {mapping.phone + 1}"]
                + [f"{name}=column {column + 1}" for name, column in mapping.variables.items()]
            )
            skipped = ", header row skipped" if mapping.header else ""
            print(f"balsong: reading {path.name} ({described}{skipped})", file=sys.stderr)
            yield orjson.dumps(fields)[:-1] + b',"recipients":['
            batch: list[bytes] = []
            for row in rows if mapping.header else _with_first(first, rows):
                if not any(row):
                    continue
                batch.append(orjson.dumps(recipient_of(row, mapping)))
                counted[0] += 1
                if len(batch) >= 1000:
                    yield (b"," if counted[0] > len(batch) else b"") + b",".join(batch)
                    batch.clear()
            if batch:
                yield (b"," if counted[0] > len(batch) else b"") + b",".join(batch)
            yield b"]}"

    return chunks(), counted


def _with_first(first: list[str], rows: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rows


def cmd_send(args: argparse.Namespace) -> int:
    from cli.progress import elapsed_seconds, follow, summary

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"no file {path}", Exit.NOT_FOUND)
    try:
        kind_of(path.name)
    except ValidationError as exc:
        raise CommandError(f"{path}: {exc.reason}", Exit.USAGE) from None
    fields = {name: getattr(args, name) for name in _FIELDS if getattr(args, name) is not None}
    if args.callback_url:
        fields["callback_url"] = args.callback_url
    if args.advertisement:
        fields["advertisement"] = True
    content, counted = _body(path, fields, args)
    headers = {"Content-Type": "application/json"}
    if args.idempotency_key:
        headers["Idempotency-Key"] = args.idempotency_key
    with api_client(args) as client:
        response = client.post("/v1/jobs", content=content, headers=headers, timeout=600)
        response.raise_for_status()
        job_id = int(response.json()["job_id"])
        print(f"balsong: job {job_id} accepted ({counted[0]:,} recipients from {path.name})", file=sys.stderr)
        print(job_id)
        if args.no_wait:
            return int(Exit.OK)
        job = follow(client, job_id, timeout=args.timeout, out=sys.stderr)
    print(summary(job, elapsed_seconds(job)), file=sys.stderr)
    return int(JOB_STATUS_EXITS.get(job["status"], Exit.JOB_NOT_FINISHED))


def register(sub: Any) -> None:
    send = sub.add_parser(
        "send",
        help="send a job to the recipients of a CSV or XLSX file, through the API, with a progress bar",
        description="Reads the file row by row and streams its recipients to POST /v1/jobs (the API's own "
        "validation). Columns: with a header row, by its names (phone/전화번호/휴대폰, member_id/회원번호, "
        "reference/주문번호, anything else a #{variable} of that name); without one (--no-header), phone "
        "first, then the body's variables in order. Prints the job id on stdout, the progress on stderr; "
        "exits as `balsong status` does once the job finishes (or 0 at once with --no-wait).",
    )
    send.add_argument("file", help="a .csv (UTF-8 or CP949) or .xlsx file of recipients, one per row")
    send.add_argument("--sender", required=True, help="an approved sender number of the key's tenant")
    send.add_argument("--body", help="the message text; #{name} is filled from the column of that name")
    send.add_argument(
        "--channel",
        choices=("auto", "sms", "lms", "kakao"),
        default="auto",
        help="sms (90 bytes), lms (2,000 bytes), auto (by each message's EUC-KR bytes), kakao (AlimTalk)",
    )
    send.add_argument("--title", help="the LMS title (at most 40 EUC-KR bytes)")
    send.add_argument("--template-code", dest="template_code", help="AlimTalk: the approved template's code")
    send.add_argument("--kind", choices=("manual", "automatic"), help="who triggered it (default: manual)")
    send.add_argument(
        "--scheduled-at",
        dest="scheduled_at",
        metavar="TIME",
        help="send at this time (ISO 8601; without an offset, KST) instead of now",
    )
    send.add_argument("--reference", help="your own id for the job (at most 100 characters)")
    send.add_argument(
        "--callback-url", dest="callback_url", help="https URL the job's status callbacks go to"
    )
    send.add_argument(
        "--advertisement", action="store_true", help="an advertisement: (광고), 080 line, no night"
    )
    send.add_argument(
        "--no-header", action="store_true", help="the first row is a recipient, not column names"
    )
    send.add_argument("--idempotency-key", metavar="KEY", help="the same key again makes no second job")
    send.add_argument(
        "--api-key", help="an API key of the tenant with the send and read scopes (default: $BALSONG_API_KEY)"
    )
    send.add_argument("--no-wait", action="store_true", help="exit once the job is accepted")
    send.add_argument(
        "--timeout",
        type=float,
        default=24 * 3600,
        metavar="SECONDS",
        help="stop following after this many seconds (default: 86400)",
    )
    send.set_defaults(handler=cmd_send)
