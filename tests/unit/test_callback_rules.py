"""Callback signatures and where a callback may go (engine.callbacks)."""

from __future__ import annotations

import pytest

from engine.callbacks.signing import new_secret, signature_header, verify
from engine.callbacks.urls import CallbackUrlRefused, check_callback_url

BODY = b'{"events": [{"event_id": "1"}]}'
API = "http://127.0.0.1:8000"


def test_a_signed_callback_verifies_and_a_tampered_or_stale_one_does_not() -> None:
    secret = new_secret()
    header = signature_header([secret], 1_700_000_000, BODY)
    assert header.startswith("t=1700000000,v1=")
    assert verify(header, BODY, secret, now=1_700_000_010)
    assert not verify(header, BODY + b" ", secret, now=1_700_000_010)
    assert not verify(header, BODY, new_secret(), now=1_700_000_010)
    assert not verify(header, BODY, secret, now=1_700_000_000 + 301)
    assert not verify("v1=abc", BODY, secret, now=1_700_000_000)


def test_during_a_rotation_either_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    header = signature_header([new, old], 1_700_000_000, BODY)
    assert header.count("v1=") == 2
    assert verify(header, BODY, old, now=1_700_000_000)
    assert verify(header, BODY, new, now=1_700_000_000)


def resolver(addresses: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host not in addresses:
            raise OSError("unknown host")
        return addresses[host]

    return resolve


PUBLIC = resolver(
    {
        "hooks.example.com": ["93.184.216.34"],
        "evil.example.com": ["169.254.169.254"],
        "intranet.example.com": ["10.0.0.5"],
        "localhost": ["127.0.0.1"],
        "mixed.example.com": ["93.184.216.35", "192.168.1.2"],
    }
)


def check(url: str, allow_http: bool = False) -> str:
    return check_callback_url(url, allow_http=allow_http, own_api_url=API, resolve=PUBLIC)


def test_a_public_https_url_is_accepted() -> None:
    assert check("https://hooks.example.com/balsong?x=1") == "https://hooks.example.com/balsong?x=1"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "must be https"),
        ("ftp://hooks.example.com/x", "must be an https"),
        ("https://user:pw@hooks.example.com/x", "user name or password"),
        ("https://evil.example.com/x", "no callback may reach"),
        ("https://169.254.169.254/latest/meta-data", "no callback may reach"),
        ("https://intranet.example.com/x", "internal address"),
        ("https://localhost/x", "internal address"),
        ("https://mixed.example.com/x", "internal address"),
        ("https://nowhere.example.com/x", "does not resolve"),
        ("https://hooks.example.com/a b", "spaces or control"),
        ("https://hooks.example.com/" + "a" * 2000, "longer than"),
    ],
)
def test_a_url_aimed_elsewhere_than_a_public_https_receiver_is_refused(url: str, reason: str) -> None:
    with pytest.raises(CallbackUrlRefused, match=reason):
        check(url)


def test_development_allows_http_to_a_receiver_on_this_machine_only() -> None:
    assert check("http://localhost:9000/hook", allow_http=True) == "http://localhost:9000/hook"
    with pytest.raises(CallbackUrlRefused, match="only to loopback or private"):
        check("http://hooks.example.com/hook", allow_http=True)
    with pytest.raises(CallbackUrlRefused, match="no callback may reach"):
        check("http://169.254.169.254/", allow_http=True)
    with pytest.raises(CallbackUrlRefused, match="balsong's own API"):
        check("http://127.0.0.1:8000/v1/jobs", allow_http=True)
