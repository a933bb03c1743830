"""Realistic webhook bodies, shaped exactly as the plugins send them."""

from __future__ import annotations

import json
from typing import Any


def memberpress(
    event: str = "subscription-stopped",
    *,
    email: str = "jane.doe@example.com",
    first_name: str = "Jane",
    last_name: str = "Doe",
    member_id: int | str = 56,
    subscription_id: str = "128",
    status: str = "cancelled",
    membership_id: str = "3006",
    membership_title: str = "Gold Club",
    **member_extra: Any,
) -> dict[str, Any]:
    """A MemberPress Developer Tools subscription payload: strings for most numbers, nested
    member and membership, and many fields we do not use."""
    return {
        "event": event,
        "type": "subscription",
        "data": {
            "coupon": "0",
            "membership": {
                "id": membership_id,
                "title": membership_title,
                "content": "",
                "excerpt": "",
                "date": "2018-08-30 16:10:22",
                "status": "publish",
                "author": "2",
                "price": "20.00",
                "period": "1",
                "period_type": "months",
                "trial": False,
                "pricing_benefits": [""],
            },
            "member": {
                "id": member_id,
                "email": email,
                "username": email.split("@")[0],
                "nicename": email.split("@")[0],
                "url": "",
                "message": "",
                "registered_at": "2019-04-18 16:47:14",
                "first_name": first_name,
                "last_name": last_name,
                "display_name": f"{first_name} {last_name}".strip(),
                **member_extra,
            },
            "id": subscription_id,
            "subscr_id": f"sub_{subscription_id}XyZ",
            "gateway": "stripe",
            "user_id": str(member_id),
            "product_id": membership_id,
            "price": "20.00",
            "period": "1",
            "period_type": "months",
            "limit_cycles": False,
            "status": status,
            "created_at": "2024-01-02 10:00:00",
            "total": "20.00",
            "tax_amount": "0.00",
            "cc_last4": "4242",
            "cc_exp_month": "07",
            "cc_exp_year": "2029",
        },
    }


def memberpress_member_deleted(email: str = "jane.doe@example.com", member_id: int = 56) -> dict:
    return {
        "event": "member-deleted",
        "type": "member",
        "data": {
            "id": member_id,
            "email": email,
            "username": "jane",
            "first_name": "Jane",
            "last_name": "Doe",
            "display_name": "Jane Doe",
            "registered_at": "2019-04-18 16:47:14",
            "active_memberships": [],
        },
    }


def body(payload: Any) -> bytes:
    return json.dumps(payload).encode()
