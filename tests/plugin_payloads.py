"""Webhook bodies shaped exactly as the real plugins send them (issue 18's facts, checked
against the plugins' public sources): MemberPress Developer Tools 1.3.x, WooCommerce
Subscriptions 5.x (tests/source_payloads.py) and PMPro's Zapier add-on 1.2.x.

MemberPress: `data.id` is a string, `data.member.id` and `data.membership.id` integers,
`coupon` false or an object, `membership` false once deleted, no `expires_at` and no locale
on a subscription; a transaction nests its subscription as an object. The job re-reads the
object when it sends, so a repeat of one transition is byte-identical.
"""

from __future__ import annotations

import json
from typing import Any

MP_USER_AGENT = "MemberPress/1.12.2"


def mp_member(email: str, first_name: str, member_id: int) -> dict[str, Any]:
    username = email.split("@")[0]
    return {
        "id": member_id,
        "email": email,
        "username": username,
        "nicename": username,
        "url": "",
        "message": "",
        "registered_at": "2025-03-04 09:12:44",
        "first_name": first_name,
        "last_name": "",
        "display_name": first_name,
        "active_memberships": [],
        "active_txn_count": "1",
        "expired_txn_count": "0",
        "trial_txn_count": "0",
        "login_count": "7",
        "address": {},
        "profile": {},
    }


def mp_membership(membership_id: int = 3006, title: str = "Gold Club") -> dict[str, Any]:
    return {
        "id": membership_id,
        "title": title,
        "content": "",
        "excerpt": "",
        "date": "2024-08-30 16:10:22",
        "status": "publish",
        "author": "1",
        "date_gmt": "2024-08-30 16:10:22",
        "group_id": "0",
        "price": "10.00",
        "period": "1",
        "period_type": "months",
        "signup_button_text": "Sign Up",
        "limit_cycles": False,
        "trial": False,
        "pricing_benefits": [],
    }


def mp_subscription(
    event: str,
    *,
    email: str = "bob@example.com",
    first_name: str = "Bob",
    member_id: int = 7,
    subscription_id: str = "1",
    status: str = "active",
    membership: dict[str, Any] | bool | None = None,
) -> dict[str, Any]:
    """A subscription event: `membership=False` as sent once the membership was deleted."""
    return {
        "event": event,
        "type": "subscription",
        "data": {
            "coupon": False,
            "membership": mp_membership() if membership is None else membership,
            "member": mp_member(email, first_name, member_id),
            "id": subscription_id,
            "subscr_id": f"sub_{subscription_id}QwErTy",
            "gateway": "s3mwf2-3x",
            "price": "10.00",
            "period": "1",
            "period_type": "months",
            "limit_cycles": False,
            "limit_cycles_num": "2",
            "limit_cycles_action": "expire",
            "prorated_trial": False,
            "trial": False,
            "trial_days": "0",
            "trial_amount": "0.00",
            "status": status,
            "created_at": "2026-01-05 10:11:12",
            "total": "10.00",
            "tax_rate": "0.000",
            "tax_amount": "0.00",
            "tax_desc": "",
            "tax_class": "standard",
            "cc_last4": "4242",
            "cc_exp_month": "07",
            "cc_exp_year": "2029",
        },
    }


def mp_transaction(
    event: str = "recurring-transaction-completed",
    *,
    email: str = "jane@example.com",
    first_name: str = "Jane",
    member_id: int = 9,
    subscription_id: str = "3",
    expires_at: str = "2027-01-01 23:59:59",
    amount: str = "10.00",
) -> dict[str, Any]:
    """A transaction event: its subscription nested as an object (`id` a string)."""
    subscription = mp_subscription(
        "subscription-created",
        email=email,
        first_name=first_name,
        member_id=member_id,
        subscription_id=subscription_id,
    )["data"]
    del subscription["member"], subscription["membership"]
    return {
        "event": event,
        "type": "transaction",
        "data": {
            "membership": mp_membership(),
            "member": mp_member(email, first_name, member_id),
            "coupon": False,
            "subscription": subscription,
            "id": "41",
            "amount": amount,
            "total": amount,
            "tax_amount": "0.00",
            "tax_rate": "0.000",
            "tax_desc": "",
            "tax_class": "standard",
            "trans_num": "ch_3PqR5tUvWx",
            "status": "complete",
            "txn_type": "payment",
            "gateway": "s3mwf2-3x",
            "prorated": "0",
            "created_at": "2026-12-01 23:59:59",
            "expires_at": expires_at,
            "corporate_account_id": "0",
            "parent_transaction_id": "0",
            "rebill": True,
            "subscription_payment_index": 11,
        },
    }


def body(payload: Any) -> bytes:
    """As the add-on encodes it (PHP's json_encode escapes slashes)."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def pmpro_push(
    *, user_id: int = 15, email: str = "erin@example.com", level_id: str = "1"
) -> dict[str, Any]:
    """PMPro Zapier's push: `level` is `{"ID": "0"}` when the level is removed, and
    old_level_status is whatever the member's oldest non-active row says."""
    level: dict[str, Any] = {"ID": level_id}
    if level_id != "0":
        level.update(
            id=level_id,
            name="Monthly",
            description="",
            initial_payment="12.00",
            billing_amount="12.00",
            cycle_number="1",
            cycle_period="Month",
            billing_limit="0",
            trial_amount="0.00",
            trial_limit="0",
            expiration_number="0",
            expiration_period="",
            startdate="1764547200",
            enddate="",
        )
    return {
        "user_id": user_id,
        "username": email.split("@")[0],
        "user_email": email,
        "old_level_status": "cancelled" if level_id == "0" else "changed",
        "level": level,
        "trigger": "pmpro_after_change_membership_level",
    }
