"""Monthly recurring revenue (MRR) of a cancelled subscription, from what its source sent.
Pure: a source name and the event's `raw` payload in, a `Money` (or None) out.

Each source states price and billing period its own way; all become an amount per month:

    memberpress   data.price + data.period + data.period_type (days|weeks|months|years;
                  lifetime: no MRR); no currency in the payload: FAREWELL_CURRENCY
    woocommerce   total + billing_interval + billing_period (day|week|month|year) + currency
    stripe        the subscription items: price.unit_amount (minor units; or
                  unit_amount_decimal) x quantity, price.recurring interval + interval_count,
                  price.currency or the subscription's currency
    pmpro         level.billing_amount + cycle_number + cycle_period (Day|Week|Month|Year),
                  from `old_level` when sent, else `level`. PMPro's cancellation push carries
                  only {"ID": "0"}: its MRR comes from the billing of the level the member
                  last got (pmpro_level_billing, remembered by worker/subscription_state.py)
    standard      data.subscription.amount + interval + interval_count + currency (optional,
                  docs/sources/standard.md)

Amounts are Decimal, never float. Anything missing, zero, negative or malformed: None
(unknown), so a plugin without prices never counts as zero revenue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
# Months per unit of billing period: a year is 12 months, a week 12/52 of one.
_MONTHS_PER = {
    "day": Decimal(12) / Decimal(365),
    "week": Decimal(12) / Decimal(52),
    "month": Decimal(1),
    "year": Decimal(12),
}
_UNIT_ALIASES = {
    "d": "day",
    "day": "day",
    "days": "day",
    "daily": "day",
    "w": "week",
    "week": "week",
    "weeks": "week",
    "weekly": "week",
    "m": "month",
    "month": "month",
    "months": "month",
    "monthly": "month",
    "y": "year",
    "year": "year",
    "years": "year",
    "yearly": "year",
    "annual": "year",
}
# Stripe amounts are in the currency's minor unit, except for these zero-decimal currencies.
_ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())


@dataclass(frozen=True)
class Money:
    amount: Decimal  # per month, rounded to cents
    currency: str  # ISO 4217, upper case

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def _decimal(value: Any) -> Decimal | None:
    """A JSON number or numeric text as Decimal (a float goes through its shortest text,
    never through binary arithmetic)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _count(value: Any) -> int | None:
    number = _decimal("1" if value is None or value == "" else value)
    if number is None or number != number.to_integral_value() or number < 1:
        return None
    return int(number)


def _currency(value: Any, default: str) -> str:
    text = str(value).strip().upper() if isinstance(value, str) else ""
    return text if len(text) == 3 and text.isalpha() else default.upper()


def monthly(amount: Any, count: Any, unit: Any, currency: str) -> Money | None:
    """`amount` every `count` `unit`s, as money per month; None when any part is unusable."""
    price = _decimal(amount)
    every = _count(count)
    period = _UNIT_ALIASES.get(str(unit).strip().lower()) if isinstance(unit, str) else None
    if price is None or price <= 0 or every is None or period is None:
        return None
    per_month = price / (every * _MONTHS_PER[period])
    return Money(per_month.quantize(CENT, rounding=ROUND_HALF_UP), currency)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _memberpress(raw: Mapping[str, Any], default: str) -> Money | None:
    data = _dict(raw.get("data"))
    return monthly(data.get("price"), data.get("period"), data.get("period_type"), default)


def _woocommerce(raw: Mapping[str, Any], default: str) -> Money | None:
    return monthly(
        raw.get("total"),
        raw.get("billing_interval"),
        raw.get("billing_period"),
        _currency(raw.get("currency"), default),
    )


def _stripe(raw: Mapping[str, Any], default: str) -> Money | None:
    sub = _dict(_dict(raw.get("data")).get("object")) if "data" in raw else raw
    rows = _dict(sub.get("items")).get("data")
    total: Decimal | None = None
    currency = ""
    for row in rows if isinstance(rows, list) else []:
        price = _dict(_dict(row).get("price"))
        recurring = _dict(price.get("recurring"))
        code = _currency(price.get("currency") or sub.get("currency"), default)
        minor = price.get("unit_amount")
        amount = _decimal(price.get("unit_amount_decimal") if minor is None else minor)
        quantity = _count(_dict(row).get("quantity"))
        if amount is None or quantity is None:
            return None
        if code.lower() not in _ZERO_DECIMAL:
            amount = amount / 100
        item = monthly(
            amount * quantity, recurring.get("interval_count"), recurring.get("interval"), code
        )
        if item is None or (currency and code != currency):
            return None  # one unusable or mixed-currency item: the total is unknown
        total, currency = (total or Decimal(0)) + item.amount, code
    return Money(total, currency) if total is not None else None


def _pmpro(raw: Mapping[str, Any], default: str) -> Money | None:
    level = _dict(raw.get("old_level")) or _dict(raw.get("level"))
    return monthly(
        level.get("billing_amount"), level.get("cycle_number"), level.get("cycle_period"), default
    )


@dataclass(frozen=True)
class LevelBilling:
    """A PMPro level's billing as its push states it (text, as sent): `amount` every
    `cycle_number` `cycle_period`. Remembered per member (worker/subscription_state.py),
    since the cancellation push carries no level to read it from."""

    amount: str
    cycle_number: str
    cycle_period: str

    def monthly(self, currency: str) -> Money | None:
        return monthly(self.amount, self.cycle_number, self.cycle_period, currency)


def pmpro_level_billing(raw: Mapping[str, Any]) -> LevelBilling | None:
    """The billing of the level a PMPro push gives (None for a level-0 cancellation, or a
    push without billing fields). A free level is billing too: 0, so no MRR."""
    level = _dict(raw.get("level"))
    if str(level.get("ID", "0")) == "0" or "billing_amount" not in level:
        return None
    return LevelBilling(
        *(str(level.get(k) or "") for k in ("billing_amount", "cycle_number", "cycle_period"))
    )


def _standard(raw: Mapping[str, Any], default: str) -> Money | None:
    sub = _dict(_dict(raw.get("data")).get("subscription"))
    return monthly(
        sub.get("amount"),
        sub.get("interval_count"),
        sub.get("interval"),
        _currency(sub.get("currency"), default),
    )


_BY_SOURCE: dict[str, Callable[[Mapping[str, Any], str], Money | None]] = {
    "memberpress": _memberpress,
    "woocommerce": _woocommerce,
    "stripe": _stripe,
    "pmpro": _pmpro,
    "standard": _standard,
}


def mrr_of(source: str, raw: Mapping[str, Any], default_currency: str = "USD") -> Money | None:
    """The subscription's monthly revenue as the source states it, or None when unknown."""
    extract = _BY_SOURCE.get(source)
    if extract is None or not isinstance(raw, Mapping):
        return None
    return extract(raw, default_currency)
