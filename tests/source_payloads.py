"""Realistic bodies for the WooCommerce, PMPro, Stripe and Standard Webhooks sources,
shaped as each sender builds them (many fields we do not read are kept on purpose)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now_iso() -> str:
    """Event times default to now: the sequence plans its steps from the event's own time."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def now_unix() -> int:
    return int(datetime.now(UTC).timestamp())


def woocommerce(
    *,
    status: str = "pending-cancel",
    subscription_id: int = 4711,
    email: str = "maria.silva@example.com",
    first_name: str = "Maria",
    last_name: str = "Silva",
    customer_id: int = 12,
    product_id: int = 77,
    product_name: str = "Gold Club (monthly)",
    end_date_gmt: str = "2030-06-01T10:00:00",
    modified_gmt: str | None = None,
    meta: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A subscription as WooCommerce Subscriptions' REST API v3 renders it in a webhook."""
    modified_gmt = modified_gmt or now_iso()
    return {
        "id": subscription_id,
        "parent_id": subscription_id - 1,
        "status": status,
        "currency": "EUR",
        "version": "8.9.1",
        "prices_include_tax": False,
        "date_created": "2024-01-01T11:00:00",
        "date_created_gmt": "2024-01-01T10:00:00",
        "date_modified": modified_gmt,
        "date_modified_gmt": modified_gmt,
        "customer_id": customer_id,
        "discount_total": "0.00",
        "total": "20.00",
        "billing": {
            "first_name": first_name,
            "last_name": last_name,
            "company": "",
            "address_1": "Rua Augusta 1",
            "address_2": "",
            "city": "Lisboa",
            "state": "",
            "postcode": "1100-048",
            "country": "PT",
            "email": email,
            "phone": "",
        },
        "shipping": {"first_name": "", "last_name": "", "country": ""},
        "payment_method": "stripe",
        "payment_method_title": "Credit card",
        "customer_note": "",
        "line_items": [
            {
                "id": 301,
                "name": product_name,
                "product_id": product_id,
                "variation_id": 0,
                "quantity": 1,
                "subtotal": "20.00",
                "total": "20.00",
                "sku": "GOLD-M",
                "price": 20,
                "meta_data": [],
            }
        ],
        "meta_data": meta if meta is not None else [],
        "billing_period": "month",
        "billing_interval": "1",
        "start_date_gmt": "2024-01-01T10:00:00",
        "trial_end_date_gmt": "",
        "next_payment_date_gmt": "",
        "last_payment_date_gmt": "2024-05-01T10:00:00",
        "cancelled_date_gmt": modified_gmt if "cancel" in status else "",
        "end_date_gmt": end_date_gmt,
        "resubscribed_from": "",
        "resubscribed_subscription": "",
        "removed_line_items": [],
        "_links": {"self": [{"href": "https://shop.example.com/wp-json/wc/v3/subscriptions/4711"}]},
    }


def pmpro_cancelled(
    *, user_id: int = 42, email: str = "li.wei@example.com", old_level_status: str = "cancelled"
) -> dict[str, Any]:
    """PMPro Zapier's "Changed Membership Level" push when a member loses their level."""
    return {
        "user_id": user_id,
        "username": email.split("@")[0],
        "user_email": email,
        "old_level_status": old_level_status,
        "level": {"ID": "0"},
        "trigger": "pmpro_after_change_membership_level",
    }


def pmpro_level(
    *, user_id: int = 42, email: str = "li.wei@example.com", level_id: str = "2"
) -> dict[str, Any]:
    """The same push when a member gets a level (PMPro's level object, trimmed by the add-on)."""
    return {
        "user_id": user_id,
        "username": email.split("@")[0],
        "user_email": email,
        "old_level_status": "",
        "level": {
            "ID": level_id,
            "name": "Silver",
            "initial_payment": "10.00",
            "billing_amount": "10.00",
            "cycle_number": "1",
            "cycle_period": "Month",
            "billing_limit": "0",
            "trial_amount": "0.00",
            "trial_limit": "0",
            "startdate": "May 2, 2024",
            "enddate": "",
        },
        "trigger": "pmpro_after_change_membership_level",
    }


def stripe_subscription(
    *,
    customer: str = "cus_PqR5tUv",
    subscription_id: str = "sub_1PabcDEF",
    status: str = "active",
    cancel_at_period_end: bool = False,
    canceled_at: int | None = None,
    ended_at: int | None = None,
    feedback: str | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    """A Billing subscription object (API version 2025-03-31 and later: periods on items)."""
    period_end = 1906538400  # 2030-06-01T10:00:00Z
    return {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "billing_cycle_anchor": 1714557600,
        "cancel_at": period_end if cancel_at_period_end else None,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at,
        "cancellation_details": {
            "comment": comment,
            "feedback": feedback,
            "reason": "cancellation_requested" if canceled_at else None,
        },
        "collection_method": "charge_automatically",
        "created": 1704103200,
        "currency": "eur",
        "customer": customer,
        "ended_at": ended_at,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_Q1w2E3",
                    "object": "subscription_item",
                    "current_period_end": period_end,
                    "current_period_start": 1714557600,
                    "price": {
                        "id": "price_1Gold",
                        "object": "price",
                        "nickname": "Gold Club",
                        "product": "prod_Gold",
                        "recurring": {"interval": "month", "interval_count": 1},
                        "unit_amount": 2000,
                    },
                    "quantity": 1,
                }
            ],
            "has_more": False,
        },
        "livemode": False,
        "metadata": {},
        "status": status,
    }


def stripe_event(
    event_type: str,
    subscription: dict[str, Any],
    *,
    event_id: str = "evt_1PxyzABC",
    created: int | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": subscription}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created if created is not None else now_unix(),
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_Abc123", "idempotency_key": None},
        "type": event_type,
    }


def stripe_customer(
    customer: str = "cus_PqR5tUv",
    *,
    email: str = "ana.costa@example.com",
    name: str = "Ana Costa",
    locales: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "id": customer,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": 1704103000,
        "email": email,
        "livemode": False,
        "metadata": {},
        "name": name,
        "preferred_locales": locales if locales is not None else [],
    }


def standard(
    event_type: str = "membership.cancelled",
    *,
    email: str = "sam.okafor@example.com",
    subscription_id: str = "rcp-91",
    status: str = "cancelled",
    locale: str = "en_US",
    access_ends_at: str | None = "2030-06-01T00:00:00Z",
    timestamp: str | None = None,
) -> dict[str, Any]:
    """Our documented Standard Webhooks body (docs/sources/standard.md)."""
    data: dict[str, Any] = {
        "member": {
            "id": "91",
            "email": email,
            "first_name": "Sam",
            "last_name": "Okafor",
            "locale": locale,
        },
        "membership": {"id": "3", "title": "Premium"},
        "subscription_id": subscription_id,
        "status": status,
    }
    if access_ends_at:
        data["access_ends_at"] = access_ends_at
    return {"type": event_type, "timestamp": timestamp or now_iso() + "Z", "data": data}
