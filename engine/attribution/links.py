"""Tracked links: each URL of an SMS/LMS body becomes a short per-recipient redirect.

At intake (``track_links: true``) every distinct URL of the body is replaced by a hidden template
variable, ``#{__link1}``, ``#{__link2}``, ...; each recipient's value for it is its own short URL
``{base}/r/{code}``. The rest of the pipeline (template filling, channel choice by the filled-in
body's EUC-KR length, carrier requests, fallback) works unchanged on those values, and the length
checked against the SMS/LMS limits is the rewritten body's.

Codes are :data:`CODE_LENGTH` characters of base62 from ``secrets`` (about 71 bits): they cannot
be guessed or enumerated from one another. They are unique by ``link_codes``'s primary key; a
collision at intake is caught and the job's codes are drawn again (`engine.intake.link_codes`).

``GET /r/{code}`` (api/links.py) counts the click and redirects to the URL. Clicks are counted
as they come: a messenger's link preview or a security scanner fetching the URL counts too.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection

#: Prefix of the hidden variables that stand for tracked links.
LINK_VARIABLE_PREFIX = "__link"
#: Characters of a short code: about 71 bits of randomness.
CODE_LENGTH = 12
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: A well-formed code, checked before any database lookup.
CODE_PATTERN = re.compile(rf"[0-9A-Za-z]{{{CODE_LENGTH}}}")
#: Attempts at a job's codes before giving up (each collision has odds of about 2^-71 per code).
CODE_ATTEMPTS = 3

#: A URL in a message: http(s), up to whitespace, a quote or angle bracket, or Hangul (Korean
#: text often runs on straight after a link, "https://a.kr/x에서 확인하세요").
_URL = re.compile(r"https?://[^\s<>\"'\x00-\x1f\x7f\u1100-\u11ff\u3131-\u318e\uac00-\ud7a3]+")
#: Punctuation that ends a sentence rather than the URL.
_TRAILING = ".,;:!?)]}"


@dataclass(frozen=True, slots=True)
class TrackedBody:
    """A body with its links replaced by hidden variables."""

    body: str
    #: The original URLs, in order; variable ``__link{i+1}`` stands for ``urls[i]``.
    urls: tuple[str, ...]

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(f"{LINK_VARIABLE_PREFIX}{i + 1}" for i in range(len(self.urls)))


def rewrite_body(body: str) -> TrackedBody:
    """``body`` with each distinct URL replaced by ``#{__linkN}`` (the same URL twice, one variable)."""
    urls: list[str] = []

    def replace(match: re.Match[str]) -> str:
        url = match[0].rstrip(_TRAILING)
        rest = match[0][len(url) :]
        if url not in urls:
            urls.append(url)
        return f"#{{{LINK_VARIABLE_PREFIX}{urls.index(url) + 1}}}{rest}"

    return TrackedBody(_URL.sub(replace, body), tuple(urls))


def new_code() -> str:
    """An unguessable short code: random bytes below 248 (= 4 x 62, so every character is equally
    likely), each taken modulo 62. One call to the OS's randomness per code, not per character:
    intake draws one for every recipient and link."""
    while True:
        chars = [ALPHABET[b % 62] for b in secrets.token_bytes(CODE_LENGTH + 4) if b < 248]
        if len(chars) >= CODE_LENGTH:
            return "".join(chars[:CODE_LENGTH])


def short_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/r/{code}"


def sample_short_url(base_url: str) -> str:
    """A short URL as long as every real one (codes have a fixed length): for length checks."""
    return short_url(base_url, "x" * CODE_LENGTH)


def record_click(conn: Connection, code: str, now: datetime) -> str | None:
    """Count a click on ``code``; the URL to redirect to, or None for an unknown code."""
    if CODE_PATTERN.fullmatch(code) is None:
        return None
    row = conn.execute(
        """
        UPDATE link_codes SET clicks = clicks + 1, first_clicked_at = coalesce(first_clicked_at, %s)
        WHERE code = %s RETURNING url
        """,
        (now, code),
    ).fetchone()
    return None if row is None else str(row[0])


def job_clicks(conn: Connection, job_id: int, delivered: int) -> dict[str, Any] | None:
    """The job's ``clicks`` block (clicks, unique clickers, click rate = unique clickers /
    delivered), or None when the job tracks no links."""
    row = conn.execute(
        """
        SELECT count(*), coalesce(sum(clicks), 0), count(DISTINCT seq) FILTER (WHERE clicks > 0)
        FROM link_codes WHERE job_id = %s
        """,
        (job_id,),
    ).fetchone()
    assert row is not None
    links, clicks, clickers = row
    if not links:
        return None
    return {
        "clicks": int(clicks),
        "unique_clickers": clickers,
        "click_rate": round(clickers / delivered, 4) if delivered else 0.0,
    }


def first_clicks(conn: Connection, job_id: int, seqs: list[int]) -> dict[int, datetime]:
    """Each recipient's first click on any of its links, by seq (recipients without one absent)."""
    if not seqs:
        return {}
    return {
        seq: first
        for seq, first in conn.execute(
            """
            SELECT seq, min(first_clicked_at) FROM link_codes
            WHERE job_id = %s AND seq = ANY(%s) AND first_clicked_at IS NOT NULL
            GROUP BY seq
            """,
            (job_id, seqs),
        )
    }
