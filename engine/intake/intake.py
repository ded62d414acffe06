"""Intake: turn a submitted job request into a validated, ordered set of recipient rows.

Nothing here touches a database: `prepare_job` is pure and fast (it runs for every recipient of
every job), and `engine.intake.job_store` stores what it returns.

Job-level problems (no body, an emoji in the body, a body too long for the channel) reject the
whole request with a ``ValidationError`` naming the field. Recipient-level problems (a bad
number, a missing variable, a value that cannot be encoded or makes the message too long) fail
that recipient alone, with a reason code and text; the job goes on with the others. What no
person types is the request's problem wherever it sits, like malformed JSON: a control character
(`engine.inputs`: message text and variable values may carry tab and line breaks, identifiers
and titles nothing) or a variable value that is not a string or a number; the ValidationError
names the field, e.g. ``recipients[7].variables.name``. These checks ride on the per-recipient
work intake does anyway (one ``str.isprintable`` per value), so a million recipients are not
walked twice.

A job's ``kind`` (manual, automatic) and an optional reservation time ``scheduled_at`` (which
makes it kind ``scheduled``) are checked here too, against the injected clock's ``now``; see
`engine.intake.reservations`.

Recipients are stored in send order: SMS recipients first, then LMS, then those that failed at
intake. Each channel's recipients thus form one contiguous range of ``seq`` numbers, so a batch
is a seq range and every query for a batch is a range scan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from engine.attribution import links
from engine.errors import ValidationError
from engine.inputs import check_line, check_text, refuse_unknown
from engine.intake.channels import ContentTooLong, choose_channel, default_title
from engine.intake.client_reference import check_reference
from engine.intake.compliance import check_advertisement
from engine.intake.encoding import UnencodableText, encoded_length
from engine.intake.job_request import FALLBACK_FIELDS, RECIPIENT_FIELDS, RecipientSegments
from engine.intake.phone import InvalidPhone, normalize_recipient, normalize_sender
from engine.intake.reservations import requested_kind
from engine.intake.template import MissingVariable, Template

REQUESTED_CHANNELS = ("sms", "lms", "auto", "kakao")
FALLBACK_CHANNELS = ("sms", "lms", "auto")
#: Longest AlimTalk message, in characters (the provider's limit).
KAKAO_MAX_CHARACTERS = 1000
PRIORITIES = ("bulk", "transactional")
#: Longest member id we keep; longer ones are an upstream bug, not data.
MEMBER_ID_MAX_LENGTH = 100
#: How much of an invalid phone input is kept, for the operator to see what was sent to us.
RAW_PHONE_KEEP = 40


@dataclass(slots=True)
class RecipientRow:
    """One recipient as stored: ``channel`` is None and ``reason_code`` set when it failed at intake."""

    phone: str
    member_id: str | None
    values: tuple[str, ...] | None
    channel: str | None
    reason_code: str | None = None
    reason_text: str | None = None
    #: Tracked links: this recipient's short codes, one per URL of ``PreparedJob.tracked_urls``.
    links: tuple[str, ...] | None = None
    #: The caller's own reference for this recipient (`engine.intake.client_reference`).
    reference: str | None = None


@dataclass(slots=True)
class PreparedJob:
    """A validated job request, ready to store."""

    requested_channel: str
    priority: str
    sender: str
    title: str | None
    body: str
    variables: tuple[str, ...]
    sms: list[RecipientRow] = field(default_factory=list)
    lms: list[RecipientRow] = field(default_factory=list)
    kakao: list[RecipientRow] = field(default_factory=list)
    invalid: list[RecipientRow] = field(default_factory=list)
    #: KakaoTalk: the approved template, and the SMS/LMS fallback for recipients it fails.
    template_code: str | None = None
    fallback: Fallback | None = None
    duplicates_removed: int = 0
    request_hash: bytes = b""
    #: Advertising (광고): checked for its label and opt-out line, kept out of the quiet hours.
    advertisement: bool = False
    #: manual (a person pressed send), automatic (an upstream system's trigger) or scheduled.
    kind: str = "manual"
    #: A reservation's time (UTC): the job is stored ``scheduled`` and planned only when due.
    scheduled_at: datetime | None = None
    #: Tracked links (``track_links``): the body's URLs, replaced in ``body`` by the hidden
    #: variables ``__link1``...; each recipient's values hold its short URLs (engine.attribution.links).
    tracked_urls: tuple[str, ...] = ()
    link_base_url: str | None = None
    #: The caller's own reference for the job (`engine.intake.client_reference`).
    reference: str | None = None
    #: Where this job's status callbacks go (checked by the caller, `engine.callbacks.urls`);
    #: None: the tenant's default, if it has one.
    callback_url: str | None = None
    #: Where the job was made: ``api`` (POST /v1/jobs) or ``console`` (the console's send page).
    origin: str = "api"
    #: Recipients not classified yet (``prepare_job(defer_classification=True)``): each step
    #: classifies a chunk more into ``sms``, ``lms`` and ``invalid``. `job_store.store_job`
    #: drives it, storing each chunk's SMS recipients while the next is classified; anyone else
    #: calls `classify_all` before reading the rows.
    unclassified: Iterator[None] | None = None

    def classify_all(self) -> None:
        """Classify the recipients still to classify (a ValidationError is the request's)."""
        if self.unclassified is not None:
            for _ in self.unclassified:
                pass
            self.unclassified = None

    @property
    def total(self) -> int:
        return len(self.sms) + len(self.lms) + len(self.kakao) + len(self.invalid)

    def valid_rows(self) -> list[RecipientRow]:
        """Recipients to send, in send order: SMS, LMS, KakaoTalk."""
        return self.sms + self.lms + self.kakao

    def rows_in_send_order(self) -> list[RecipientRow]:
        return self.valid_rows() + self.invalid

    def exclude(self, phones: set[str], reason_code: str, reason_text: str) -> int:
        """Move the valid recipients whose number is in ``phones`` to the invalid ones, with the
        reason; returns how many moved."""
        moved = 0
        for rows in (self.sms, self.lms, self.kakao):
            kept = []
            for row in rows:
                if row.phone in phones:
                    row.channel, row.reason_code, row.reason_text = None, reason_code, reason_text
                    self.invalid.append(row)
                    moved += 1
                else:
                    kept.append(row)
            rows[:] = kept
        return moved


@dataclass(frozen=True, slots=True)
class Fallback:
    """What a KakaoTalk recipient gets by SMS/LMS when the Kakao message fails finally."""

    channel: str
    body: str
    title: str | None


class KakaoTemplateLike(Protocol):
    content: str
    variables: tuple[str, ...]

    @property
    def approved(self) -> bool: ...


def request_hash(raw_body: bytes) -> bytes:
    """Fingerprint of a request body, to tell an idempotent retry from a different request."""
    return hashlib.sha256(raw_body).digest()


def prepare_job(
    request: Any,
    *,
    max_recipients: int,
    raw_body: bytes = b"",
    kakao_template: Callable[[str], KakaoTemplateLike] | None = None,
    now: datetime | None = None,
    reservation_horizon_days: int = 60,
    link_base_url: str | None = None,
    defer_classification: bool = False,
) -> PreparedJob:
    """Validate a decoded job request and classify each recipient.

    With ``defer_classification``, an SMS/LMS job comes back with its recipients still to
    classify (``PreparedJob.unclassified``): `job_store.store_job` classifies them chunk by chunk
    while PostgreSQL stores the chunks before. Not an advertising job (its opted-out numbers must
    be known before any is stored), nor one with tracked links (a code collision redraws codes
    in stored rows), nor a KakaoTalk job: those are classified at once.

    ``kakao_template`` looks up an AlimTalk template by code (raising ``LookupError`` for an
    unknown one); it is needed only for ``channel: kakao``. ``now`` (the injected clock's time;
    the wall clock if omitted) is what a reservation's ``scheduled_at`` must lie ahead of.
    ``link_base_url`` is where tracked links' short URLs point; it is needed only for
    ``track_links: true``.

    Raises:
      ValidationError: the job as a whole cannot be accepted; names the field and the reason.
    """
    if not isinstance(request, Mapping):
        raise ValidationError("body", "the request body must be a JSON object")
    requested = _choice(request, "channel", REQUESTED_CHANNELS, default=None)
    priority = _choice(request, "priority", PRIORITIES, default="bulk")
    sender = _sender(request.get("sender"))
    advertisement = _flag(request, "advertisement")
    kind, scheduled_at = requested_kind(request, now or datetime.now(UTC), reservation_horizon_days)
    track_links = _flag(request, "track_links")
    reference = request.get("reference")
    if reference is not None:
        reference = check_reference(reference, "reference")
    if track_links and requested == "kakao":
        raise ValidationError(
            "track_links",
            "a KakaoTalk message is its approved template's text; its links cannot be rewritten",
        )
    if requested == "kakao":
        if advertisement:
            check_advertisement("", requested)
        job = _prepare_kakao(request, requested, priority, sender, max_recipients, raw_body, kakao_template)
    else:
        job = _prepare_text(
            request,
            requested,
            priority,
            sender,
            max_recipients,
            raw_body,
            advertisement=advertisement,
            track_links=track_links,
            link_base_url=link_base_url,
        )
        if not defer_classification or advertisement or track_links:
            job.classify_all()
    job.kind, job.scheduled_at = kind, scheduled_at
    job.advertisement = advertisement
    job.reference = reference
    callback_url = request.get("callback_url")
    if callback_url is not None and type(callback_url) is not str:
        raise ValidationError("callback_url", "must be a URL (a string)")
    job.callback_url = callback_url
    return job


def _prepare_text(
    request: Mapping[str, Any],
    requested: str,
    priority: str,
    sender: str,
    max_recipients: int,
    raw_body: bytes,
    *,
    advertisement: bool,
    track_links: bool,
    link_base_url: str | None,
) -> PreparedJob:
    """An SMS/LMS job: one text (filled per recipient), SMS or LMS chosen per recipient."""
    body = _text(request, "body", required=True, multiline=True)
    assert body is not None  # required=True raised otherwise
    if advertisement:
        check_advertisement(body, requested)
    title = _text(request, "title", required=False)
    if title is not None and requested == "sms":
        raise ValidationError("title", "SMS messages have no title; use channel lms or auto")
    recipients = _recipient_list(request, max_recipients)

    tracked = _tracked_links(body, link_base_url) if track_links else None
    template = Template.parse(tracked.body if tracked else body)
    literal_bytes = _literal_bytes(template, body)
    if title is None and requested != "sms":
        title = default_title(body)
    title_bytes = _title_bytes(title)
    if not template.has_variables:
        # The same message for everyone: a content problem is the job's, not a recipient's.
        _channel_or_reject(requested, literal_bytes, title_bytes)
    elif tracked is not None and link_base_url and set(template.variables) == set(tracked.variables):
        # Links alone vary, and every short URL is as long as the next: the same length for all.
        sample = links.sample_short_url(link_base_url)
        _channel_or_reject(
            requested, encoded_length(template.render([sample] * len(tracked.urls))), title_bytes
        )

    job = PreparedJob(
        requested_channel=requested,
        priority=priority,
        sender=sender,
        title=title,
        body=tracked.body if tracked else body,
        variables=template.variables,
        request_hash=request_hash(raw_body),
        tracked_urls=tracked.urls if tracked else (),
        link_base_url=link_base_url if tracked else None,
    )
    job.unclassified = _classify_recipients(job, recipients, template, title_bytes)
    return job


def _prepare_kakao(
    request: Mapping[str, Any],
    requested: str,
    priority: str,
    sender: str,
    max_recipients: int,
    raw_body: bytes,
    kakao_template: Callable[[str], KakaoTemplateLike] | None,
) -> PreparedJob:
    """A KakaoTalk AlimTalk job: an approved template filled per recipient, and an optional
    SMS/LMS fallback (sent from ``sender``) for recipients whose Kakao message fails."""
    code = _text(request, "template_code", required=True)
    assert code is not None
    if request.get("body") is not None:
        raise ValidationError("body", "a KakaoTalk message is its template's text; send template_code only")
    if kakao_template is None:
        raise ValidationError("channel", "KakaoTalk is not configured")
    try:
        found = kakao_template(code)
    except LookupError:
        raise ValidationError(
            "template_code", f"no approved template {code!r}", code="template_not_found"
        ) from None
    if not found.approved:
        raise ValidationError(
            "template_code", f"template {code!r} is not approved", code="template_not_approved"
        )
    recipients = _recipient_list(request, max_recipients)
    template = Template.parse(found.content)
    job = PreparedJob(
        requested_channel=requested,
        priority=priority,
        sender=sender,
        title=None,
        body=found.content,
        variables=template.variables,
        request_hash=request_hash(raw_body),
        template_code=code,
        fallback=_fallback(request.get("fallback"), template),
    )
    for index, item, phone, member_id, reference in _distinct_recipients(job, recipients):
        variables = item.get("variables")
        try:
            values = template.values_from(variables if isinstance(variables, Mapping) else {})
        except MissingVariable as exc:
            job.invalid.append(
                RecipientRow(
                    phone,
                    member_id,
                    None,
                    None,
                    "missing_variable",
                    f"template {code} needs variable {exc.name!r}",
                    reference=reference,
                )
            )
            continue
        for value in values:
            if type(value) is not str or not value.isprintable():
                values = _checked_values(values, template.variables, index)
                break
        if len(template.render(values)) > KAKAO_MAX_CHARACTERS:
            job.invalid.append(
                RecipientRow(
                    phone,
                    member_id,
                    values,
                    None,
                    "content_too_long",
                    f"longer than {KAKAO_MAX_CHARACTERS} characters once filled in",
                    reference=reference,
                )
            )
            continue
        job.kakao.append(RecipientRow(phone, member_id, values, "kakao", reference=reference))
    return job


def _tracked_links(body: str, link_base_url: str | None) -> links.TrackedBody:
    if not link_base_url:
        raise ValidationError("track_links", "link tracking is not configured (BALSONG_PUBLIC_URL)")
    if any(name.startswith(links.LINK_VARIABLE_PREFIX) for name in Template.parse(body).variables):
        raise ValidationError("body", f"#{{{links.LINK_VARIABLE_PREFIX}...}} is reserved for tracked links")
    tracked = links.rewrite_body(body)
    if not tracked.urls:
        raise ValidationError("track_links", "the body has no http:// or https:// link to track")
    return tracked


def _fallback(value: Any, template: Template) -> Fallback | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError("fallback", "must be an object {channel, body, title?}")
    refuse_unknown(value, FALLBACK_FIELDS, "fallback", "fallback.")
    channel = _choice(value, "channel", FALLBACK_CHANNELS, default="auto")
    body = _text(value, "body", required=True, multiline=True, prefix="fallback.")
    assert body is not None
    title = _text(value, "title", required=False, prefix="fallback.")
    fallback_template = Template.parse(body)
    unknown = set(fallback_template.variables) - set(template.variables)
    if unknown:
        raise ValidationError(
            "fallback.body", f"uses variables the template has not: {', '.join(sorted(unknown))}"
        )
    try:
        encoded_length(fallback_template.render([""] * len(fallback_template.variables)))
        if title is not None:
            encoded_length(title)
    except UnencodableText as exc:
        raise ValidationError("fallback", str(exc), code="unencodable_text") from None
    if title is None and channel != "sms":
        title = default_title(body)
    if not fallback_template.has_variables:
        try:
            choose_channel(channel, encoded_length(body), encoded_length(title) if title else 0)
        except ContentTooLong as exc:
            raise ValidationError(f"fallback.{exc.field}", str(exc), code="content_too_long") from None
    return Fallback(channel, body, title)


def _recipient_list(request: Mapping[str, Any], max_recipients: int) -> Collection[Any]:
    # A list when decoded whole; RecipientSegments (decoded as iterated, once) when streamed.
    recipients = request.get("recipients")
    if not isinstance(recipients, list | RecipientSegments) or not recipients:
        raise ValidationError(
            "recipients", "must be a non-empty list of {phone, variables?, member_id?, reference?}"
        )
    # Streamed recipients are counted exactly as they are decoded (RecipientSegments.__iter__).
    if isinstance(recipients, list) and len(recipients) > max_recipients:
        raise ValidationError(
            "recipients", f"at most {max_recipients} recipients per job, got {len(recipients)}"
        )
    return recipients


def _phone(raw: Any) -> tuple[str, tuple[str, str] | None]:
    """The normalised number, or what was given and (reason code, reason) if it is no number."""
    try:
        if not isinstance(raw, str):
            raise InvalidPhone("phone must be a string such as '010-1234-5678'", "invalid_phone")
        return normalize_recipient(raw), None
    except InvalidPhone as exc:
        kept = raw[:RAW_PHONE_KEEP] if isinstance(raw, str) else repr(raw)[:RAW_PHONE_KEEP]
        return kept, (exc.code, exc.reason)


#: Recipients classified per step of `PreparedJob.unclassified`.
CLASSIFY_CHUNK = 4096


def _classify_recipients(
    job: PreparedJob,
    recipients: Iterable[Any],
    template: Template,
    title_bytes: int,
) -> Iterator[None]:
    """Classify ``recipients`` into ``job``, a step per `CLASSIFY_CHUNK` of them."""
    has_variables = template.has_variables
    requested = job.requested_channel
    fixed_channel = (
        None if has_variables else _channel_or_reject(requested, encoded_length(job.body), title_bytes)
    )
    sms, lms, invalid = job.sms, job.lms, job.invalid
    link_names = tuple(f"{links.LINK_VARIABLE_PREFIX}{i + 1}" for i in range(len(job.tracked_urls)))
    for index, item, phone, member_id, reference in _distinct_recipients(job, recipients):
        if not has_variables:
            row = RecipientRow(phone, member_id, None, fixed_channel)
        elif link_names:
            row = _row_with_links(
                index, phone, member_id, item.get("variables"), template, title_bytes, job, link_names
            )
        else:
            row = _personalised_row(
                index, phone, member_id, item.get("variables"), template, title_bytes, requested
            )
        if reference is not None:
            row.reference = reference
        if row.channel == "sms":
            sms.append(row)
        elif row.channel == "lms":
            lms.append(row)
        else:
            invalid.append(row)
        if not index % CLASSIFY_CHUNK:
            yield


def _distinct_recipients(
    job: PreparedJob, recipients: Iterable[Any]
) -> Iterator[tuple[int, Mapping[str, Any], str, str | None, str | None]]:
    """Each recipient with a valid number not seen before in the job, as (index in the request,
    item, normalised phone, member id, reference). Bad numbers go to ``job.invalid`` with their reason;
    repeats are counted. A control character in a number is the request's error, not a bad
    number: it is no number anyone typed, and it could not be kept to show.

    The hot loop of intake (once per recipient): `type(x) is dict` comes before the slower ABC
    check, since decoded JSON objects are plain dicts."""
    seen: set[str] = set()
    for index, item in enumerate(recipients):
        if type(item) is not dict and not isinstance(item, Mapping):
            raise ValidationError(
                f"recipients[{index}]", "must be an object {phone, variables?, member_id?, reference?}"
            )
        if not item.keys() <= RECIPIENT_FIELDS:
            refuse_unknown(item, RECIPIENT_FIELDS, "a recipient", f"recipients[{index}].")
        member_id = item.get("member_id")
        if member_id is not None:
            member_id = _member_id(member_id, index)
        reference = item.get("reference")
        if reference is not None:
            reference = check_reference(reference, f"recipients[{index}].reference")
        phone, problem = _phone(item.get("phone"))
        if problem is not None:
            check_line(phone, f"recipients[{index}].phone")
            job.invalid.append(RecipientRow(phone, member_id, None, None, *problem, reference=reference))
            continue
        if phone in seen:
            job.duplicates_removed += 1
            continue
        seen.add(phone)
        yield index, item, phone, member_id, reference


def _personalised_row(
    index: int,
    phone: str,
    member_id: str | None,
    variables: Any,
    template: Template,
    title_bytes: int,
    requested: str,
) -> RecipientRow:
    """Fill one recipient's variables and choose its channel by the length of its own message."""
    if type(variables) is not dict and not isinstance(variables, Mapping):
        return RecipientRow(
            phone,
            member_id,
            None,
            None,
            "missing_variable",
            f"variables must be an object with {', '.join(template.variables)}",
        )
    try:
        values = template.values_from(variables)
    except MissingVariable as exc:
        return RecipientRow(
            phone, member_id, None, None, "missing_variable", f"variable {exc.name!r} is missing"
        )
    for value in values:
        # Inline, not a call: nearly every value is a printable string, and this runs per recipient.
        if type(value) is not str or not value.isprintable():
            values = _checked_values(values, template.variables, index)
            break
    try:
        body_bytes = encoded_length(template.render(values))
    except UnencodableText as exc:
        return RecipientRow(phone, member_id, values, None, "unencodable_text", f"variables: {exc}")
    try:
        channel = choose_channel(requested, body_bytes, title_bytes)
    except ContentTooLong as exc:
        return RecipientRow(phone, member_id, values, None, "content_too_long", str(exc))
    return RecipientRow(phone, member_id, values, channel.value)


def _row_with_links(
    index: int,
    phone: str,
    member_id: str | None,
    variables: Any,
    template: Template,
    title_bytes: int,
    job: PreparedJob,
    link_names: tuple[str, ...],
) -> RecipientRow:
    """A recipient of a job with tracked links: its own short URLs join its variables, so its
    channel is chosen by the length of the message it will really get."""
    assert job.link_base_url is not None
    if variables is None:
        variables = {}
    if type(variables) is not dict and not isinstance(variables, Mapping):
        return _personalised_row(
            index, phone, member_id, variables, template, title_bytes, job.requested_channel
        )
    codes = tuple(links.new_code() for _ in link_names)
    merged = {
        **variables,
        **{name: links.short_url(job.link_base_url, c) for name, c in zip(link_names, codes, strict=True)},
    }
    row = _personalised_row(index, phone, member_id, merged, template, title_bytes, job.requested_channel)
    if row.channel is not None:
        row.links = codes
    return row


def _literal_bytes(template: Template, body: str) -> int:
    """EUC-KR length of the body without its placeholders; rejects unencodable body text."""
    literal = template.render([""] * len(template.variables))
    try:
        return encoded_length(literal)
    except UnencodableText as exc:
        raise ValidationError("body", str(exc), code="unencodable_text") from None


def _title_bytes(title: str | None) -> int:
    if title is None:
        return 0
    try:
        return encoded_length(title)
    except UnencodableText as exc:
        raise ValidationError("title", str(exc), code="unencodable_text") from None


def _channel_or_reject(requested: str, body_bytes: int, title_bytes: int) -> str:
    try:
        return choose_channel(requested, body_bytes, title_bytes).value
    except ContentTooLong as exc:
        raise ValidationError(exc.field, str(exc), code="content_too_long") from None


def _choice(request: Mapping[str, Any], name: str, allowed: Sequence[str], default: str | None) -> str:
    value = request.get(name, default)
    if value is None:
        raise ValidationError(name, f"is required; one of {', '.join(allowed)}")
    if value not in allowed:
        raise ValidationError(name, f"must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _flag(request: Mapping[str, Any], name: str) -> bool:
    value = request.get(name, False)
    if not isinstance(value, bool):
        raise ValidationError(name, "must be true or false")
    return value


def _text(
    request: Mapping[str, Any], name: str, *, required: bool, multiline: bool = False, prefix: str = ""
) -> str | None:
    """A string field; ``multiline`` (message text) may carry tab and line breaks, other
    fields (a title, a template code) no control character at all."""
    field = prefix + name
    value = request.get(name)
    if value is None:
        if required:
            raise ValidationError(field, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    if required and not value.strip():
        raise ValidationError(field, "must not be empty")
    return check_text(value, field) if multiline else check_line(value, field)


def _sender(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("sender", "is required: a registered sender number such as '02-1234-5678'")
    try:
        return normalize_sender(value)
    except InvalidPhone as exc:
        raise ValidationError("sender", exc.reason, code="invalid_sender") from None


def _member_id(value: Any, index: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(f"recipients[{index}].member_id", "must be a string")
    text = str(value)
    if len(text) > MEMBER_ID_MAX_LENGTH:
        raise ValidationError(
            f"recipients[{index}].member_id", f"longer than {MEMBER_ID_MAX_LENGTH} characters"
        )
    return text if text.isprintable() else check_line(text, f"recipients[{index}].member_id")


def _checked_values(values: tuple[Any, ...], names: tuple[str, ...], index: int) -> tuple[str, ...]:
    """A recipient's variable values as text. A number is sent as its text; a string may carry
    tab and line breaks (as a body may) but no other control character; anything else (an
    object, a list, true, null) is the request's error, naming ``recipients[i].variables.name``.

    """
    checked = []
    for name, value in zip(names, values, strict=True):
        field = f"recipients[{index}].variables.{name}"
        if type(value) is str:
            checked.append(check_text(value, field))
        elif type(value) in (int, float):
            checked.append(str(value))
        else:
            raise ValidationError(field, "must be a string or a number")
    return tuple(checked)
