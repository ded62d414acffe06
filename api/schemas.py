"""What the API's answers look like, for its OpenAPI document.

Routes build their JSON by hand (orjson, no response models on the hot path), so FastAPI cannot
see their shape; this module states it, in one place, and `document` puts it into the OpenAPI
document: each operation's success body, the problem (`api.problems`, ``application/problem+json``)
for every error status it may answer, and no trace of FastAPI's own ``HTTPValidationError``
(balsong never answers with it). The schema tests (schemathesis) hold the answers to these shapes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.problems import MEDIA_TYPE, problem_schema

Schema = dict[str, Any]

NULLABLE_STRING: Schema = {"type": ["string", "null"]}
INTEGER: Schema = {"type": "integer"}
STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}


def obj(*required: str, **properties: Schema) -> Schema:
    """An object with these properties (all listed in ``required`` must be present)."""
    return {"type": "object", "required": list(required), "properties": properties}


def page(key: str, item: Schema) -> Schema:
    return obj(key, "next_cursor", **{key: {"type": "array", "items": item}, "next_cursor": NULLABLE_STRING})


COUNTS: Schema = obj(
    "total", "queued", "delivered", "failed", total=INTEGER, queued=INTEGER, delivered=INTEGER
)
POINTS: Schema = {"type": "string", "pattern": r"^-?\d+\.\d{2}$"}
JOB_SUMMARY: Schema = obj(
    "id",
    "status",
    "counts",
    id=INTEGER,
    status=STRING,
    counts=COUNTS,
    reference=NULLABLE_STRING,
    origin=STRING,
    charged=POINTS,
    refunded=POINTS,
)
JOB: Schema = obj(
    "id",
    "status",
    "created_at",
    "content",
    "counts",
    "failures",
    id=INTEGER,
    status=STRING,
    created_at=STRING,
    content={"type": "object"},
    reference=NULLABLE_STRING,
    counts=COUNTS,
    failures={"type": "array", "items": obj("reason_code", "count", reason_code=STRING, count=INTEGER)},
    attribution=obj(
        "orders",
        "revenue",
        "ordering_members",
        "conversion_rate",
        orders=INTEGER,
        revenue={"type": "string", "pattern": r"^\d+\.\d{2}$"},
        ordering_members=INTEGER,
        conversion_rate={"type": "number"},
    ),
    clicks={"type": ["object", "null"]},
)
RECIPIENT: Schema = obj(
    "seq",
    "phone",
    "status",
    seq=INTEGER,
    phone=STRING,
    status=STRING,
    reference=NULLABLE_STRING,
    first_clicked_at=NULLABLE_STRING,
)
STRINGS: Schema = {"type": "array", "items": STRING}
KEY: Schema = obj("id", "prefix", "scopes", id=INTEGER, prefix=STRING, scopes=STRINGS)
_STATS_FIELDS = ("sent", "delivered", "failed", "expired", "unknown", "fallbacks", "cancelled", "rejected")
STATS_COUNTS: Schema = obj(
    *_STATS_FIELDS,
    "success_rate",
    "charged",
    **dict.fromkeys(_STATS_FIELDS, INTEGER),
    success_rate={"type": ["number", "null"], "minimum": 0, "maximum": 1},
    charged=POINTS,
)
STATS: Schema = obj(
    "from",
    "to",
    "granularity",
    "channel",
    "timezone",
    "buckets",
    "totals",
    "by_channel",
    "reasons",
    **{"from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"}},
    granularity={"type": "string", "enum": ["day", "hour"]},
    channel={"type": ["string", "null"], "enum": ["sms", "lms", "kakao", None]},
    timezone=STRING,
    buckets={
        "type": "array",
        "items": {
            **STATS_COUNTS,
            "required": ["start", *STATS_COUNTS["required"]],
            "properties": {"start": STRING, **STATS_COUNTS["properties"]},
        },
    },
    totals=STATS_COUNTS,
    by_channel={"type": "object", "additionalProperties": STATS_COUNTS},
    reasons={
        "type": "array",
        "items": obj(
            "channel",
            "code",
            "text",
            "failures",
            "share",
            channel={"type": "string", "enum": ["sms", "lms", "kakao", "intake"]},
            code=STRING,
            text=STRING,
            failures=INTEGER,
            share={"type": "number", "minimum": 0, "maximum": 1},
        ),
    },
)

#: Success body of each operation, by (method, path).
SUCCESS: dict[tuple[str, str], Schema] = {
    ("post", "/v1/jobs"): obj("job_id", job_id=INTEGER),
    ("get", "/v1/jobs"): page("jobs", JOB_SUMMARY),
    ("get", "/v1/jobs/{job_id}"): JOB,
    ("get", "/v1/jobs/{job_id}/recipients"): page("recipients", RECIPIENT),
    ("get", "/v1/recipients"): obj(
        "phone",
        "from",
        "to",
        "recipients",
        "truncated",
        phone=STRING,
        **{"from": STRING, "to": STRING},
        recipients={
            "type": "array",
            "items": obj(
                "job",
                "seq",
                "phone",
                "status",
                job=obj("id", id=INTEGER),
                seq=INTEGER,
                phone=STRING,
                status=STRING,
            ),
        },
        truncated=BOOLEAN,
    ),
    ("get", "/v1/balance"): obj("balance", "prices", balance=POINTS, prices={"type": "object"}),
    ("post", "/v1/balance/top-ups"): obj("balance", "added", balance=POINTS, added=POINTS),
    ("get", "/v1/ledger"): obj(
        "entries", entries={"type": "array", "items": obj("id", "kind", "amount", kind=STRING, amount=POINTS)}
    ),
    ("get", "/v1/senders"): obj(
        "senders", senders={"type": "array", "items": obj("number", "state", number=STRING, state=STRING)}
    ),
    ("post", "/v1/senders"): obj("number", "state", number=STRING, state=STRING),
    ("get", "/v1/opt-outs"): obj(
        "total",
        "opt_outs",
        "next_cursor",
        total=INTEGER,
        opt_outs={"type": "array"},
        next_cursor=NULLABLE_STRING,
    ),
    ("post", "/v1/opt-outs"): obj("added", "invalid", added=INTEGER, invalid={"type": "array"}),
    ("delete", "/v1/opt-outs/{phone}"): obj("removed", removed=BOOLEAN),
    ("get", "/v1/keys"): obj("keys", keys={"type": "array", "items": KEY}),
    ("post", "/v1/keys"): obj("key", "scopes", key=STRING, scopes=STRINGS),
    ("post", "/v1/keys/{key_id}/rotate"): obj("key", key=STRING),
    ("delete", "/v1/keys/{key_id}"): obj("revoked", revoked=INTEGER),
    ("post", "/v1/carriers/{carrier}/reports"): obj("status", status=STRING),
    ("post", "/v1/orders"): obj(
        "orders",
        orders={
            "type": "array",
            "items": obj(
                "order_number",
                "status",
                "attributed_job_id",
                order_number=STRING,
                status=STRING,
                attributed_job_id={"type": ["integer", "null"]},
            ),
        },
    ),
    ("get", "/v1/callback"): obj("url", url=NULLABLE_STRING),
    ("put", "/v1/callback"): obj("url", url=NULLABLE_STRING),
    ("get", "/v1/jobs/{job_id}/callbacks"): obj(
        "url",
        "events",
        "last_error",
        "endpoint",
        url=NULLABLE_STRING,
        events=obj("delivered", "pending", "failed", delivered=INTEGER, pending=INTEGER, failed=INTEGER),
        last_error=NULLABLE_STRING,
        endpoint=obj(
            "failures_in_a_row",
            "next_attempt_at",
            "last_attempt_at",
            "last_success_at",
            "last_error",
            "disabled_at",
            failures_in_a_row=INTEGER,
            next_attempt_at=NULLABLE_STRING,
            last_attempt_at=NULLABLE_STRING,
            last_success_at=NULLABLE_STRING,
            last_error=NULLABLE_STRING,
            disabled_at=NULLABLE_STRING,
        ),
    ),
    ("post", "/v1/jobs/{job_id}/callbacks/replay"): obj("job_id", "events", job_id=INTEGER, events=INTEGER),
    ("get", "/v1/stats"): STATS,
    ("get", "/v1/jobs/{job_id}/orders"): page(
        "members",
        obj("member_id", "revenue", "orders", member_id=STRING, revenue=POINTS, orders={"type": "array"}),
    ),
}

#: Error answers any operation may give, each a problem.
ERRORS = {
    "401": "no valid API key",
    "403": "the key lacks the scope this operation needs",
    "404": "not found, or another tenant's",
    "413": "the request body is too large",
    "422": "a field is not valid, or not a field at all (the problem's field names it)",
    "429": "too many failed API-key attempts, or over an intake limit (Retry-After says when to retry)",
    "503": "a backing service is unavailable; nothing was accepted (Retry-After says when to retry)",
}
_CONFLICT_ON_JOB = "the job's status does not allow this (code says why: job_finished, job_not_finished ...)"
#: Error answers only some operations give, by (method, path).
MORE_ERRORS: dict[tuple[str, str], dict[str, str]] = {
    ("post", "/v1/jobs"): {
        "400": "the client left before sending the whole body (no one reads this answer)",
        "402": "the balance does not cover the job (needed, available)",
        "409": "a request with this Idempotency-Key is still being stored",
    },
    ("post", "/v1/jobs/{job_id}/cancel"): {"409": _CONFLICT_ON_JOB},
    ("post", "/v1/jobs/{job_id}/resend"): {
        "402": "the balance does not cover the resend (needed, available)",
        "409": _CONFLICT_ON_JOB + "; resend_in_progress names the running resend (job_id)",
    },
    ("post", "/v1/jobs/{job_id}/resume"): {"409": "the job is not paused (job_not_paused)"},
    ("post", "/v1/jobs/{job_id}/callbacks/replay"): {"409": "the job has no callback URL (no_callback_url)"},
}
#: Headers a problem of this status carries.
_HEADERS = {
    "401": {"WWW-Authenticate": {"schema": STRING, "description": "Bearer"}},
    "429": {"Retry-After": {"schema": INTEGER, "description": "seconds to wait before trying again"}},
    "503": {"Retry-After": {"schema": INTEGER, "description": "seconds to wait before trying again"}},
}
_REQUEST_ID = {
    "X-Request-Id": {
        "schema": STRING,
        "description": "the caller's X-Request-Id (up to 128 of A-Z a-z 0-9 . _ -), or one made for it",
    }
}


def document(app: FastAPI) -> None:
    """Give ``app`` an OpenAPI document with the schemas above."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, routes=app.routes)
        spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = problem_schema()
        for schema_name in ("HTTPValidationError", "ValidationError"):
            spec["components"]["schemas"].pop(schema_name, None)
        error_content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                for status, description in {**ERRORS, **MORE_ERRORS.get((method, path), {})}.items():
                    responses[status] = {
                        "description": description,
                        "content": error_content,
                        "headers": {**_REQUEST_ID, **_HEADERS.get(status, {})},
                    }
                success = SUCCESS.get((method, path))
                for status, response in responses.items():
                    if status.startswith("2"):
                        response.setdefault("headers", {}).update(_REQUEST_ID)
                    if status.startswith("2") and "application/json" in response.get("content", {}):
                        if success is None:
                            # Undescribed: promise no more than a JSON object.
                            response["content"]["application/json"]["schema"] = {"type": "object"}
                        else:
                            response["content"]["application/json"]["schema"] = success
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
