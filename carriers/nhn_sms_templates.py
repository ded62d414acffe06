"""Registered NHN SMS templates, one per distinct (channel, sender, title, body), made once.

The NHN SMS v3.0 API fills per-recipient values only into a *registered* template: the send
API's ``recipientList[].templateParameter`` is documented as "Template parameter (with the
input of template ID)", its keys as "Replacement key (##key##)". A template is registered with
``POST /templates``, which requires a ``categoryId``; the category is found (or created) once.

The template id is a hash of the content, so every process derives the same id: a second
registration answers ``-2101 Already-registered Template ID``, which is success here.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from carriers.base import Batch, Channel
from carriers.errors import CarrierRejected
from carriers.nhn_sms_codes import TEMPLATE_ALREADY_REGISTERED, TEMPLATE_LIMIT_REACHED

#: Name of the category balsong's templates are registered under.
CATEGORY_NAME = "balsong"
#: Template ids are at most 50 characters (error -2109).
_ID_PREFIX = "balsong_"
_ID_HASH_CHARS = 40

#: ``call(method, path, payload, params) -> response body`` raising ``engine.errors`` classes.
Call = Callable[[str, str, dict[str, Any] | None, dict[str, Any] | None], dict[str, Any]]


def provider_body(batch: Batch) -> str:
    """``batch.body`` with our ``#{name}`` placeholders turned into NHN's ``##name##`` keys."""
    body = batch.body
    for name in batch.variables:
        body = body.replace("#{" + name + "}", "##" + name + "##")
    return body


def template_id(batch: Batch, body: str) -> str:
    """A stable id for the content: the same batch content yields the same id in every process."""
    content = "\x00".join((batch.channel.value, batch.sender, batch.title or "", body))
    return _ID_PREFIX + hashlib.sha256(content.encode()).hexdigest()[:_ID_HASH_CHARS]


class TemplateRegistry:
    """Finds or registers the template for a batch; thread-safe; remembers what it registered.

    Parameters:
      call: performs one provider API call (see :data:`Call`).
      category_id: the category to register under; found or created on first need if ``None``.
    """

    def __init__(self, call: Call, category_id: int | None = None) -> None:
        self._call = call
        self._category_id = category_id
        self._known: dict[str, str] = {}
        #: Registration is rare and slow; one lock keeps two threads from doing it twice.
        self._lock = threading.Lock()

    def ensure(self, batch: Batch) -> str | None:
        """The registered template id for ``batch``, or ``None`` when the provider's template
        limit is reached (the caller then renders each recipient's text itself)."""
        body = provider_body(batch)
        key = template_id(batch, body)
        if key in self._known:
            return key
        with self._lock:
            if key in self._known:
                return key
            if not self._register(key, batch, body):
                return None
            self._known[key] = key
            return key

    def forget(self, key: str) -> None:
        """Drop ``key`` from the cache (the provider said it no longer exists)."""
        self._known.pop(key, None)

    def _register(self, key: str, batch: Batch, body: str) -> bool:
        try:
            return self._register_once(key, batch, body)
        except CarrierRejected:
            # The category we remembered may be gone (deleted in the console): find or create
            # it again, once.
            self._category_id = None
            return self._register_once(key, batch, body)

    def _register_once(self, key: str, batch: Batch, body: str) -> bool:
        payload: dict[str, Any] = {
            "categoryId": self._category(),
            "templateId": key,
            "templateName": key,
            "templateDesc": "balsong job template",
            "sendNo": batch.sender,
            "sendType": "1" if batch.channel is Channel.LMS else "0",
            "body": body,
            "useYn": "Y",
        }
        if batch.channel is Channel.LMS:
            payload["title"] = batch.title or ""
        try:
            self._call("POST", "/templates", payload, None)
        except CarrierRejected as exc:
            if exc.code == str(TEMPLATE_ALREADY_REGISTERED):
                return True
            if exc.code == str(TEMPLATE_LIMIT_REACHED):
                return False
            raise
        return True

    def _category(self) -> int:
        if self._category_id is not None:
            return self._category_id
        page = 1
        while True:
            answer = self._call("GET", "/categories", None, {"pageNum": page, "pageSize": 1000})
            rows = (answer.get("body") or {}).get("data") or []
            for row in rows:
                if row.get("categoryName") == CATEGORY_NAME:
                    self._category_id = int(row["categoryId"])
                    return self._category_id
            if len(rows) < 1000:
                break
            page += 1
        created = self._call(
            "POST",
            "/categories",
            {"categoryName": CATEGORY_NAME, "categoryDesc": "balsong templates", "useYn": "Y"},
            None,
        )
        data = (created.get("body") or {}).get("data") or {}
        self._category_id = int(data["categoryId"])
        return self._category_id
