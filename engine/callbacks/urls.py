"""Where a callback may go: the rules a callback URL must pass, when it is set and again before
every delivery (a name may resolve elsewhere by then).

- ``https`` only; ``http`` only to a loopback or private address, and only where
  ``BALSONG_CALLBACK_ALLOW_HTTP=true`` (a developer's receiver on their own machine).
- Never at an internal service (SSRF): every address the host resolves to must be public, unless
  ``BALSONG_CALLBACK_ALLOW_HTTP`` allows loopback and private ones for development. Link-local
  addresses, the cloud metadata address among them, are refused always, and so is balsong's own
  API (``BALSONG_API_URL``'s host).
- No user name or password in the URL (a secret there would be logged and shown); at most
  `MAX_URL_LENGTH` characters.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from engine.config import Settings
from engine.errors import ValidationError

#: Longest callback URL accepted, in characters.
MAX_URL_LENGTH = 2000

#: host, port -> the addresses it resolves to (`socket.getaddrinfo` unless a test gives one).
Resolver = Callable[[str, int], Sequence[str]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def system_resolver(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})


class CallbackUrlRefused(ValueError):
    """A callback URL that may not be used; the message says why (shown to the caller)."""


def _internal(address: IPAddress) -> bool:
    """Loopback or private: a developer's machine or network, allowed for development only."""
    return address.is_loopback or address.is_private


def _never(address: IPAddress) -> bool:
    """Addresses no callback may reach: link-local (the metadata service), multicast, reserved,
    unspecified."""
    return address.is_link_local or address.is_multicast or address.is_reserved or address.is_unspecified


def _literal(host: str) -> IPAddress | None:
    """The address a host written as an IP address names, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_callback_url(
    url: str, *, allow_http: bool, own_api_url: str, resolve: Resolver = system_resolver
) -> str:
    """``url`` if a callback may go there, else raises `CallbackUrlRefused` saying why."""
    if not isinstance(url, str) or not url:
        raise CallbackUrlRefused("must be a URL")
    if len(url) > MAX_URL_LENGTH:
        raise CallbackUrlRefused(f"longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise CallbackUrlRefused("contains spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise CallbackUrlRefused("must be an https:// URL")
    if parts.scheme == "http" and not allow_http:
        raise CallbackUrlRefused("must be https (http is allowed only with BALSONG_CALLBACK_ALLOW_HTTP)")
    if parts.username is not None or parts.password is not None:
        raise CallbackUrlRefused("must not carry a user name or password")
    host = parts.hostname
    if not host:
        raise CallbackUrlRefused("has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise CallbackUrlRefused("has an invalid port") from None
    own = urlsplit(own_api_url)
    if own.hostname and host == own.hostname.lower() and port == (own.port or 80):
        raise CallbackUrlRefused("points at balsong's own API")
    try:
        literal = _literal(host)
        addresses = (
            [literal] if literal else [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host, port)]
        )
    except (OSError, ValueError):
        raise CallbackUrlRefused(f"its host {host!r} does not resolve") from None
    if not addresses:
        raise CallbackUrlRefused(f"its host {host!r} does not resolve")
    for address in addresses:
        if _never(address):
            raise CallbackUrlRefused(f"resolves to {address}, an address no callback may reach")
        if _internal(address) and not allow_http:
            raise CallbackUrlRefused(
                f"resolves to {address}, an internal address (allowed only with BALSONG_CALLBACK_ALLOW_HTTP)"
            )
    if parts.scheme == "http" and not all(_internal(a) for a in addresses):
        raise CallbackUrlRefused("http is allowed only to loopback or private addresses; use https")
    return url


def check_setting(url: str, field: str, settings: Settings, resolve: Resolver = system_resolver) -> str:
    """``url`` if a callback may go there under ``settings``; else a ValidationError naming
    ``field`` (a job's ``callback_url``, a tenant's default ``url``)."""
    try:
        return check_callback_url(
            url, allow_http=settings.callback_allow_http, own_api_url=settings.api_url, resolve=resolve
        )
    except CallbackUrlRefused as exc:
        raise ValidationError(field, str(exc)) from None
