"""MRR from what each source sends: pure functions over payloads shaped like the real
plugins' (tests/payloads.py, tests/source_payloads.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests import payloads, source_payloads
from worker.revenue import Money, monthly, mrr_of


def test_memberpress_price_period_and_type():
    raw = payloads.memberpress()
    assert mrr_of("memberpress", raw) == Money(Decimal("20.00"), "USD")
    raw["data"].update(price="120.00", period="1", period_type="years")
    assert mrr_of("memberpress", raw, "BRL") == Money(Decimal("10.00"), "BRL")
    raw["data"].update(price="30.00", period="3", period_type="months")
    assert mrr_of("memberpress", raw) == Money(Decimal("10.00"), "USD")
    raw["data"].update(price="10.00", period="2", period_type="weeks")
    assert mrr_of("memberpress", raw) == Money(Decimal("21.67"), "USD")


def test_memberpress_lifetime_or_free_is_unknown():
    raw = payloads.memberpress()
    raw["data"].update(period_type="lifetime")
    assert mrr_of("memberpress", raw) is None
    raw["data"].update(price="0.00", period_type="months")
    assert mrr_of("memberpress", raw) is None


def test_woocommerce_total_interval_period_currency():
    raw = source_payloads.woocommerce()
    assert mrr_of("woocommerce", raw) == Money(Decimal("20.00"), "EUR")
    raw.update(total="60.00", billing_interval="3", billing_period="month", currency="usd")
    assert mrr_of("woocommerce", raw) == Money(Decimal("20.00"), "USD")
    raw.update(total="99.99", billing_interval="1", billing_period="year")
    assert mrr_of("woocommerce", raw) == Money(Decimal("8.33"), "USD")


def test_stripe_items_price_interval_currency_and_quantity():
    sub = source_payloads.stripe_subscription()
    raw = source_payloads.stripe_event("customer.subscription.deleted", sub)
    assert mrr_of("stripe", raw) == Money(Decimal("20.00"), "EUR")  # the subscription's
    item = sub["items"]["data"][0]
    item["quantity"] = 3
    item["price"].update(currency="usd", unit_amount=12000)
    item["price"]["recurring"] = {"interval": "year", "interval_count": 1}
    assert mrr_of("stripe", raw) == Money(Decimal("30.00"), "USD")
    item["price"].update(currency="jpy", unit_amount=1200, recurring={"interval": "month"})
    item["quantity"] = 1
    assert mrr_of("stripe", raw) == Money(Decimal("1200.00"), "JPY")  # zero-decimal
    item["price"].update(currency="usd", unit_amount=None, unit_amount_decimal="999.5")
    assert mrr_of("stripe", raw) == Money(Decimal("10.00"), "USD")


def test_stripe_two_items_add_up_and_mixed_currencies_are_unknown():
    sub = source_payloads.stripe_subscription()
    first = sub["items"]["data"][0]
    second = {**first, "price": {**first["price"], "unit_amount": 500}}
    sub["items"]["data"].append(second)
    raw = source_payloads.stripe_event("customer.subscription.deleted", sub)
    assert mrr_of("stripe", raw) == Money(Decimal("25.00"), "EUR")
    second["price"]["currency"] = "usd"
    assert mrr_of("stripe", raw) is None


def test_pmpro_level_billing_and_the_bare_cancellation():
    assert mrr_of("pmpro", source_payloads.pmpro_level()) == Money(Decimal("10.00"), "USD")
    assert mrr_of("pmpro", source_payloads.pmpro_cancelled()) is None  # {"ID": "0"} only
    raw = source_payloads.pmpro_cancelled()
    raw["old_level"] = {"ID": "2", "billing_amount": "90", "cycle_number": "1",
                        "cycle_period": "Year"}  # fmt: skip
    assert mrr_of("pmpro", raw, "EUR") == Money(Decimal("7.50"), "EUR")


def test_standard_webhooks_optional_subscription_fields():
    raw = {"type": "membership.cancelled", "data": {"member": {"email": "a@example.com"}}}
    assert mrr_of("standard", raw) is None
    raw["data"]["subscription"] = {"amount": "49.90", "interval": "month", "currency": "brl"}
    assert mrr_of("standard", raw) == Money(Decimal("49.90"), "BRL")
    raw["data"]["subscription"].update(interval="year", interval_count=2, amount=240)
    assert mrr_of("standard", raw) == Money(Decimal("10.00"), "BRL")


@pytest.mark.parametrize(
    ("amount", "count", "unit"),
    [
        ("abc", "1", "month"),
        ("NaN", "1", "month"),
        ("Infinity", "1", "month"),
        ("-5", "1", "month"),
        (True, "1", "month"),
        ({"x": 1}, "1", "month"),
        ("10", "0", "month"),
        ("10", "1.5", "month"),
        ("10", "1", "fortnight"),
        ("10", "1", None),
    ],
)
def test_malformed_parts_are_unknown_never_zero(amount, count, unit):
    assert monthly(amount, count, unit, "USD") is None


def test_floats_in_json_never_go_through_binary_arithmetic():
    assert monthly(0.1, 1, "month", "USD") == Money(Decimal("0.10"), "USD")
    assert isinstance(monthly(19.99, 1, "month", "USD").amount, Decimal)


def test_unknown_sources_and_bad_payloads():
    assert mrr_of("paypal", {"price": "1"}) is None
    assert mrr_of("memberpress", {"data": "not a dict"}) is None
    assert mrr_of("stripe", {"data": {"object": {"items": {"data": "x"}}}}) is None
