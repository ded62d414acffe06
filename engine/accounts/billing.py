"""Balances and the ledger: what a tenant pays for each message, reserved up front.

Money moves only by appending a ledger row (``charge``, ``refund``, ``top_up``, ``adjustment``);
``tenant_balances`` holds the ledger's running sum, updated in the same transaction under the
balance row's lock, so two jobs reserving at once cannot both spend the last points.

A job's life in the ledger:
- at intake, one ``charge`` row reserves its full cost: every valid recipient at its channel's
  price, and for a KakaoTalk recipient with a fallback, the dearer of the two (it may need both
  tries but is only ever charged for one);
- at settlement (``engine.lifecycle.settlement``), one ``refund`` row gives back everything not delivered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from psycopg import Connection

from engine.config import Settings
from engine.errors import InsufficientBalance

#: Price list keys: the channels a recipient can be charged for.
PRICED_CHANNELS = ("sms", "lms", "kakao", "fallback_sms", "fallback_lms")
LEDGER_KINDS = ("charge", "refund", "top_up", "adjustment")
ZERO = Decimal("0.00")
CENT = Decimal("0.01")
#: Largest top-up or adjustment in one operation, in points: a typo guard, not a business rule.
MAX_AMOUNT = Decimal(1_000_000_000)
#: An amount as an operator writes it: ASCII digits, at most two decimals. Nothing Decimal()
#: also reads (exponents, underscores, other scripts' digits, signs, spaces, "10.") is money.
_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")


@dataclass(frozen=True, slots=True)
class Prices:
    """Unit prices of one tenant, in points."""

    sms: Decimal
    lms: Decimal
    kakao: Decimal
    fallback_sms: Decimal
    fallback_lms: Decimal

    def of(self, channel: str) -> Decimal:
        return Decimal(getattr(self, channel))

    def as_json(self) -> dict[str, str]:
        """The form kept on the job (``jobs.prices``): decimal strings, never floats."""
        return {channel: str(self.of(channel)) for channel in PRICED_CHANNELS}

    @classmethod
    def from_json(cls, stored: Mapping[str, str]) -> Prices:
        return cls(**{channel: Decimal(stored[channel]) for channel in PRICED_CHANNELS})

    def fallback(self, channel: str | None) -> Decimal:
        """What a fallback by ``channel`` (sms, lms or auto) may cost at most."""
        if channel is None:
            return ZERO
        if channel == "sms":
            return self.fallback_sms
        if channel == "lms":
            return self.fallback_lms
        return max(self.fallback_sms, self.fallback_lms)


def prices_for(conn: Connection, settings: Settings, tenant_id: int) -> Prices:
    """The tenant's prices: its own where set, the settings' otherwise."""
    rows = conn.execute("SELECT channel, unit_price FROM tenant_prices WHERE tenant_id = %s", (tenant_id,))
    own: dict[str, Decimal] = {str(channel): Decimal(price) for channel, price in rows}
    defaults = {channel: Decimal(str(price)) for channel, price in settings.default_prices().items()}
    return Prices(**{channel: Decimal(own.get(channel, defaults[channel])) for channel in PRICED_CHANNELS})


def set_price(conn: Connection, tenant_id: int, channel: str, unit_price: Decimal) -> None:
    if channel not in PRICED_CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(PRICED_CHANNELS)}")
    if unit_price < 0:
        raise ValueError("a price cannot be negative")
    conn.execute(
        """
        INSERT INTO tenant_prices (tenant_id, channel, unit_price) VALUES (%s, %s, %s)
        ON CONFLICT (tenant_id, channel) DO UPDATE SET unit_price = EXCLUDED.unit_price
        """,
        (tenant_id, channel, unit_price),
    )


def job_cost(prices: Prices, counts: Mapping[str, int], fallback_channel: str | None) -> Decimal:
    """The most a job can cost: what intake reserves.

    Parameters:
      counts: valid recipients per channel (``sms``, ``lms``, ``kakao``).
      fallback_channel: the KakaoTalk job's fallback channel, or None.
    """
    kakao_each = max(prices.kakao, prices.fallback(fallback_channel))
    return (
        counts.get("sms", 0) * prices.sms
        + counts.get("lms", 0) * prices.lms
        + counts.get("kakao", 0) * kakao_each
    ).quantize(ZERO)


def append(
    conn: Connection,
    tenant_id: int,
    kind: str,
    amount: Decimal,
    *,
    job_id: int | None = None,
    memo: str | None = None,
    require_funds: bool = False,
) -> Decimal:
    """Append one ledger row and move the balance with it; returns the new balance.

    Call inside a transaction: the balance row stays locked until it commits.

    Raises:
      InsufficientBalance: ``require_funds`` and the balance would go below zero.
    """
    if kind not in LEDGER_KINDS:
        raise ValueError(f"kind must be one of {', '.join(LEDGER_KINDS)}")
    conn.execute(
        "INSERT INTO tenant_balances (tenant_id) VALUES (%s) ON CONFLICT (tenant_id) DO NOTHING", (tenant_id,)
    )
    row = conn.execute(
        "SELECT balance FROM tenant_balances WHERE tenant_id = %s FOR UPDATE", (tenant_id,)
    ).fetchone()
    assert row is not None
    balance = Decimal(row[0])
    after = balance + amount
    if require_funds and after < 0:
        raise InsufficientBalance(needed=-amount, available=balance)
    conn.execute(
        "UPDATE tenant_balances SET balance = %s, updated_at = now() WHERE tenant_id = %s", (after, tenant_id)
    )
    conn.execute(
        """
        INSERT INTO ledger (tenant_id, kind, amount, balance_after, job_id, memo)
        VALUES (%s, %s, %s, %s, %s, %s)
        """,
        (tenant_id, kind, amount, after, job_id, memo),
    )
    return after


def reserve_job(conn: Connection, tenant_id: int, job_id: int, cost: Decimal) -> None:
    """Charge the job's full cost at intake, or raise InsufficientBalance (the caller rolls back)."""
    append(conn, tenant_id, "charge", -cost, job_id=job_id, memo="reserved at intake", require_funds=True)


def parse_amount(text: object, *, signed: bool = False) -> Decimal:
    """An amount of points from its plain decimal text (``"10000"``, ``"250.50"``): positive and
    at most `MAX_AMOUNT`; with ``signed`` (an adjustment), a leading ``-`` is allowed too.

    Raises:
      ValueError: anything else, with a message for the caller.
    """
    if not isinstance(text, str):
        raise ValueError('must be a string of digits such as "10000" or "250.50"')
    negative = signed and text.startswith("-")
    digits = text[1:] if negative else text
    if _AMOUNT.fullmatch(digits) is None:
        raise ValueError(
            'must be plain ASCII digits with at most two decimals, such as "10000" or "250.50"'
            + (" (a leading '-' takes points away)" if signed else "")
        )
    amount = Decimal(digits).quantize(CENT)
    if amount == 0:
        raise ValueError("must be more than zero")
    if amount > MAX_AMOUNT:
        raise ValueError(f"must be at most {MAX_AMOUNT} points in one operation")
    return -amount if negative else amount


def top_up(conn: Connection, tenant_id: int, amount: Decimal, memo: str | None = None) -> Decimal:
    """Add points to a balance: the platform's operation (the CLI, or a platform key), never a
    tenant's."""
    if not 0 < amount <= MAX_AMOUNT:
        raise ValueError(f"a top-up must be a positive amount of at most {MAX_AMOUNT} points")
    with conn.transaction():
        return append(conn, tenant_id, "top_up", amount, memo=memo)


def adjust(conn: Connection, tenant_id: int, amount: Decimal, memo: str) -> Decimal:
    """A correction by an operator, with the reason it was made."""
    if not memo.strip():
        raise ValueError("an adjustment needs a memo saying why")
    if not 0 < abs(amount) <= MAX_AMOUNT:
        raise ValueError(f"an adjustment must be a non-zero amount of at most {MAX_AMOUNT} points")
    with conn.transaction():
        return append(conn, tenant_id, "adjustment", amount, memo=memo)


@dataclass(frozen=True, slots=True)
class BalanceCheck:
    balance: Decimal
    ledger_sum: Decimal

    @property
    def consistent(self) -> bool:
        return self.balance == self.ledger_sum


def balance(conn: Connection, tenant_id: int) -> BalanceCheck:
    """The tenant's balance beside the sum of its ledger (they must be equal)."""
    row = conn.execute(
        """
        SELECT coalesce((SELECT balance FROM tenant_balances WHERE tenant_id = %(t)s), 0),
               coalesce((SELECT sum(amount) FROM ledger WHERE tenant_id = %(t)s), 0)
        """,
        {"t": tenant_id},
    ).fetchone()
    assert row is not None
    return BalanceCheck(Decimal(row[0]).quantize(ZERO), Decimal(row[1]).quantize(ZERO))


@dataclass(frozen=True, slots=True)
class JobMoney:
    charged: Decimal
    refunded: Decimal
    #: The job's refund row exists: its charges are final.
    settled: bool

    @property
    def net(self) -> Decimal:
        return self.charged - self.refunded


def job_money(conn: Connection, job_id: int) -> JobMoney:
    """What the job was charged at intake and refunded at settlement (positive amounts)."""
    row = conn.execute(
        """
        SELECT coalesce(-sum(amount) FILTER (WHERE kind = 'charge'), 0),
               coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0),
               count(*) FILTER (WHERE kind = 'refund') > 0
        FROM ledger WHERE job_id = %s AND kind IN ('charge', 'refund')
        """,
        (job_id,),
    ).fetchone()
    assert row is not None
    return JobMoney(Decimal(row[0]).quantize(ZERO), Decimal(row[1]).quantize(ZERO), bool(row[2]))
