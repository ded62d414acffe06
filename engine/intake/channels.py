"""Which channel a message goes by, from its size in bytes.

Korean carriers take an SMS of up to 90 bytes and an LMS of up to 2,000 bytes, with an LMS
title of up to 40 bytes, all counted in EUC-KR (see :mod:`engine.intake.encoding`). A client asks for
``sms``, ``lms`` or ``auto``; ``auto`` sends as SMS, the cheaper channel, whenever the body fits.
A message over the limit is refused at intake rather than cut: a truncated message says
something its sender did not write.
"""

from __future__ import annotations

import re

from carriers.base import Channel
from engine.intake.encoding import encoded_length

__all__ = [
    "LMS_MAX_BYTES",
    "LMS_TITLE_MAX_BYTES",
    "SMS_MAX_BYTES",
    "ContentTooLong",
    "choose_channel",
    "default_title",
]

#: Most bytes (EUC-KR) of an SMS body.
SMS_MAX_BYTES = 90
#: Most bytes (EUC-KR) of an LMS body.
LMS_MAX_BYTES = 2000
#: Most bytes (EUC-KR) of an LMS title; SMS has no title.
LMS_TITLE_MAX_BYTES = 40


class ContentTooLong(ValueError):
    """The body or title is longer than the channel allows.

    Attributes:
      field: ``"body"`` or ``"title"``.
      length: its length, in bytes (EUC-KR).
      limit: the most bytes the channel allows.
      channel: the channel whose limit was exceeded.
    """

    def __init__(self, field: str, length: int, limit: int, channel: Channel) -> None:
        self.field = field
        self.length = length
        self.limit = limit
        self.channel = channel
        super().__init__(f"{field} is {length} bytes in EUC-KR; {channel.name} allows {limit}")


def choose_channel(requested: str, body_bytes: int, title_bytes: int = 0) -> Channel:
    """The channel a message of this size goes by.

    Parameters:
      requested: ``"sms"``, ``"lms"`` or ``"auto"`` (a :class:`~carriers.base.Channel` works too).
      body_bytes: body length in bytes (EUC-KR), variables filled in.
      title_bytes: title length in bytes (EUC-KR); counts only for LMS, 0 when there is none.

    Returns:
      ``Channel.SMS`` or ``Channel.LMS``; ``auto`` gives SMS when the body fits in 90 bytes.

    Raises:
      ContentTooLong: the body (or, for LMS, the title) exceeds the channel's limit.
      ValueError: ``requested`` is none of the three.
    """
    if requested == "auto":
        if body_bytes <= SMS_MAX_BYTES:
            return Channel.SMS
        return _lms(body_bytes, title_bytes)
    if requested == "sms":
        if body_bytes > SMS_MAX_BYTES:
            raise ContentTooLong("body", body_bytes, SMS_MAX_BYTES, Channel.SMS)
        return Channel.SMS
    if requested == "lms":
        return _lms(body_bytes, title_bytes)
    raise ValueError(f"unknown channel {requested!r}; expected 'sms', 'lms' or 'auto'")


def _lms(body_bytes: int, title_bytes: int) -> Channel:
    if body_bytes > LMS_MAX_BYTES:
        raise ContentTooLong("body", body_bytes, LMS_MAX_BYTES, Channel.LMS)
    if title_bytes > LMS_TITLE_MAX_BYTES:
        raise ContentTooLong("title", title_bytes, LMS_TITLE_MAX_BYTES, Channel.LMS)
    return Channel.LMS


#: A title for an LMS whose body has no text outside its variables.
FALLBACK_TITLE = "안내"
_VARIABLE = re.compile(r"#\{[^}]*\}")


def default_title(body: str) -> str:
    """The LMS title of a message sent without one: its first line of text, cut to fit 40 bytes.

    The provider refuses an LMS without a title (``-2114 Title is empty``), and Korean phones
    show the title above the message, so the first words of the message are what a reader
    expects there. Variables are left out: one title serves every recipient of the job.

    Parameters:
      body: text that encodes in EUC-KR (intake has checked it).
    """
    for line in _VARIABLE.sub("", body).splitlines():
        line = " ".join(line.split())
        if line:
            break
    else:
        return FALLBACK_TITLE
    while encoded_length(line) > LMS_TITLE_MAX_BYTES:
        line = line[:-1]
    return line.rstrip() or FALLBACK_TITLE
