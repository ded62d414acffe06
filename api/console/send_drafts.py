"""A send in the making (발송하기): what the operator composed and the recipients' rows, kept in
Redis between the upload, the check and the confirm step.

A draft is keyed by a random token and bound to the console session that made it (its CSRF
token, which no other session has) and to its tenant: another session, or another tenant, finds
no draft. The rows are staged as they are read from the upload, `SEGMENT_ROWS` at a time, into a
Redis list (one JSON array per segment), so neither the file nor its rows are ever whole in the
API's memory while they are staged; any API process or replica can take the next step. Drafts
expire `DRAFT_SECONDS` after they were last touched. A draft's rows never change: editing the
message copies them to a new draft.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from api.console.session import ConsoleSession
from engine.errors import NotFound, ValidationError
from engine.intake.job_request import RecipientSegments
from engine.intake.recipient_files import ColumnMapping, recipient_of
from engine.runtime import get_runtime

#: Rows per staged segment (one Redis list element, one JSON array).
SEGMENT_ROWS = 5000
#: Seconds a draft lives after its last step.
DRAFT_SECONDS = 3600
#: Rows kept to show in the mapping step.
SAMPLE_ROWS = 4


@dataclass(slots=True)
class Draft:
    token: str
    tenant_id: int
    #: The session's CSRF token: binds the draft to the session that made it.
    session_csrf: str
    #: The compose form's fields, as the operator sent them.
    compose: dict[str, str]
    #: Where the rows came from: a file's name, or "붙여넣기".
    source: str
    rows: int = 0
    columns: int = 0
    sample: list[list[str]] = field(default_factory=list)
    mapping: dict[str, Any] | None = None
    #: The job made from it, once confirmed.
    job_id: int | None = None

    @property
    def column_mapping(self) -> ColumnMapping | None:
        return ColumnMapping.from_json(self.mapping) if self.mapping else None

    def fingerprint(self) -> bytes:
        """What makes this draft's job the one it is: the job's request fingerprint, so a second
        confirm of the same draft finds the first one's job (`engine.intake.job_store`)."""
        made_of = {"token": self.token, "compose": self.compose, "mapping": self.mapping}
        canonical = orjson.dumps(made_of, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).digest()


def _meta_key(token: str) -> str:
    return get_runtime().keys.send_draft(token, "meta")


def _rows_key(token: str) -> str:
    return get_runtime().keys.send_draft(token, "rows")


def stage(
    session: ConsoleSession, compose: dict[str, str], source: str, rows: Iterable[list[str]], max_rows: int
) -> Draft:
    """A new draft of ``compose`` and ``rows``, staged as they are read.

    Raises:
      ValidationError: no row, or more than ``max_rows`` (what is staged is dropped).
    """
    rt = get_runtime()
    draft = Draft(secrets.token_urlsafe(24), session.principal.tenant_id, session.csrf_token, compose, source)
    rows_key = _rows_key(draft.token)
    segment: list[list[str]] = []
    try:
        for row in rows:
            draft.rows += 1
            if draft.rows > max_rows:
                raise ValidationError("recipients", f"at most {max_rows} recipients per job")
            draft.columns = max(draft.columns, len(row))
            if len(draft.sample) < SAMPLE_ROWS:
                draft.sample.append(row)
            segment.append(row)
            if len(segment) >= SEGMENT_ROWS:
                rt.redis.rpush(rows_key, orjson.dumps(segment))
                rt.redis.expire(rows_key, DRAFT_SECONDS)
                segment = []
        if segment:
            rt.redis.rpush(rows_key, orjson.dumps(segment))
        if not draft.rows:
            raise ValidationError("recipients", "no recipient: paste numbers or upload a file")
    except BaseException:
        rt.redis.delete(rows_key)
        raise
    rt.redis.expire(rows_key, DRAFT_SECONDS)
    save(draft)
    return draft


def restage(session: ConsoleSession, old: Draft, compose: dict[str, str]) -> Draft:
    """A new draft of ``compose`` with ``old``'s rows, copied a segment at a time (the two
    drafts' keys have different hash tags: no COPY across Redis Cluster slots)."""
    rt = get_runtime()
    draft = Draft(
        secrets.token_urlsafe(24),
        session.principal.tenant_id,
        session.csrf_token,
        compose,
        old.source,
        old.rows,
        old.columns,
        old.sample,
        old.mapping,
    )
    target = _rows_key(draft.token)
    for rows in segments(old.token):
        rt.redis.rpush(target, orjson.dumps(rows))
        rt.redis.expire(target, DRAFT_SECONDS)
    save(draft)
    return draft


def save(draft: Draft) -> None:
    rt = get_runtime()
    rt.redis.set(_meta_key(draft.token), orjson.dumps(asdict(draft)), ex=DRAFT_SECONDS)
    rt.redis.expire(_rows_key(draft.token), DRAFT_SECONDS)


def load(session: ConsoleSession, token: str) -> Draft:
    """The session's draft ``token``; NotFound if it expired or is another session's."""
    raw = get_runtime().redis.get(_meta_key(token))
    if raw is None:
        raise NotFound("no such draft")
    draft = Draft(**orjson.loads(raw))  # type: ignore[arg-type]
    same_session = hmac.compare_digest(draft.session_csrf.encode(), session.csrf_token.encode())
    if not same_session or draft.tenant_id != session.principal.tenant_id:
        raise NotFound("no such draft")
    return draft


def segments(token: str) -> Iterator[list[list[str]]]:
    """The draft's staged rows, a segment at a time."""
    rt = get_runtime()
    key = _rows_key(token)
    for index in range(int(rt.redis.llen(key))):
        raw = rt.redis.lindex(key, index)
        if raw is None:
            raise NotFound("the draft expired")
        yield orjson.loads(raw)  # type: ignore[arg-type]


def recipients(draft: Draft, mapping: ColumnMapping, max_recipients: int) -> RecipientSegments:
    """The draft's rows as job recipients, in the form intake reads a streamed request's
    (`engine.intake.job_request.RecipientSegments`: JSON text, decoded a segment at a time)."""
    staged = RecipientSegments(max_recipients=max_recipients)
    first = True
    for rows in segments(draft.token):
        if first and mapping.header:
            rows = rows[1:]
        first = False
        items = [recipient_of(row, mapping) for row in rows]
        staged.add(orjson.dumps(items)[1:-1], len(items), exact=True)
    return staged


def numbered_rows(draft: Draft, mapping: ColumnMapping) -> Iterator[tuple[int, list[str]]]:
    """Each recipient row with its row number as the operator sees it (from 1, a header counted)."""
    number = 0
    for rows in segments(draft.token):
        for row in rows:
            number += 1
            if number == 1 and mapping.header:
                continue
            yield number, row
