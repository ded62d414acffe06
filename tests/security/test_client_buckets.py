"""Which throttle counter a client address counts against (`engine.accounts.sign_in_limits`).

Given client addresses, when their counter is named, then an IPv4 address counts alone, an IPv6
address with the rest of its /64 (one host is given a whole /64 and may change address within
it at will), and anything unreadable in one shared counter.
"""

from __future__ import annotations

import pytest

from engine.accounts.sign_in_limits import client_bucket


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("198.18.0.7", "198.18.0.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        (None, "unknown"),
        ("not-an-address", "unknown"),
    ],
)
def test_addresses_count_against_their_bucket(address: str | None, bucket: str) -> None:
    assert client_bucket(address) == bucket
