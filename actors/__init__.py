"""Dramatiq actors. ``dramatiq actors`` imports this package: it installs the broker, then the
actors. The actors are thin: they parse the message and call engine/ and carriers/."""

from __future__ import annotations

import logging

from actors.broker import install_broker
from engine.config import get_settings

# One line per carrier request at INFO is noise that costs throughput; failures still log.
logging.getLogger("httpx").setLevel(logging.WARNING)

broker = install_broker(get_settings())

from actors import jobs, reports, resend  # noqa: E402  (the broker must exist before actors bind to it)

__all__ = ["broker", "jobs", "reports", "resend"]
