"""MemberPress (Developer Tools add-on).

POST JSON `{"event", "type", "data"}`, sometimes without a JSON content type. The key is
one the add-on generates (10 characters; the owner copies it into Farewell), sent in the
`MEMBERPRESS-WEBHOOK-KEY` header, or by old versions only as `?key=` in the URL.
Subscription events carry `data.member` and `data.membership` (`false` once the membership
was deleted); `member-deleted` carries the member itself as `data`; transaction events carry
`data.expires_at`, `data.amount` and the subscription as a nested object.

Webhooks wait in MemberPress's job table for WP-Cron, and the job re-reads the object when
it sends: a payload is the state at send time, the event time is when we receive it, and a
repeat of one transition is byte-identical. So deliveries are deduplicated by subscription
state (worker/subscription_state.py), never by their bytes. The add-on retries only on a
network error: any HTTP reply, 4xx included, ends the job, so a delivery Farewell cannot use
is answered 200 with the reason (hooks/receiver.py), never refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Request

from worker.events import Event, EventKind, utcnow

from .errors import Ignored
from .payload import (
    check_shared_key,
    get_member,
    get_membership,
    get_object,
    get_text,
    load_object,
    parse_wp_datetime,
)

SECRET_SETTING = "memberpress_key"  # noqa: S105 - a field name, not a secret
KEY_HEADER = "MEMBERPRESS-WEBHOOK-KEY"
ACK_UNUSABLE = True  # an authenticated body Farewell cannot use: 200, never a 4xx

EVENT_KINDS = {
    "subscription-stopped": EventKind.CANCELLED,
    "subscription-expired": EventKind.EXPIRED,
    "subscription-paused": EventKind.PAUSED,
    "subscription-resumed": EventKind.RESUMED,
    "subscription-created": EventKind.REACTIVATED,
    "member-deleted": EventKind.ERASED,
}
# The subscription state each event reports (worker/subscription_state.py); for
# `subscription-created` the payload's status decides, as the job re-reads the subscription
# when it sends: a member who cancelled before WP-Cron ran shows up as created+cancelled.
EVENT_STATES = {
    "subscription-stopped": "cancelled",
    "subscription-expired": "expired",
    "subscription-paused": "paused",
    "subscription-resumed": "active",
}
CREATED_STATES = {
    "active": (EventKind.REACTIVATED, "active"),
    "cancelled": (EventKind.CANCELLED, "cancelled"),
    "suspended": (EventKind.PAUSED, "paused"),
}
# Transactions that pay for access: they tell until when (data.expires_at), which the
# subscription's cancellation email then says. Other transaction events are ignored.
PAYMENT_EVENTS = frozenset(
    {"transaction-completed", "recurring-transaction-completed", "renewal-transaction-completed"}
)


def authenticate(request: Request, secret: str) -> None:
    # Developer Tools 1.3.x always sends its header, and the header wins over `?key=`.
    check_shared_key(request.headers.get(KEY_HEADER) or request.args.get("key"), secret)


def parse(body: bytes, headers: Mapping[str, str] | None = None) -> Event | Ignored:
    payload = load_object(body)
    name = get_text(payload, "event", "event", required=True)
    if name in PAYMENT_EVENTS:
        return _payment(payload, name)
    kind = EVENT_KINDS.get(name)
    if kind is None:
        return Ignored(f"event {name!r} is not one Farewell acts on")
    data = get_object(payload, "data", "data")

    if kind is EventKind.ERASED:
        return Event(
            source="memberpress",
            name=name,
            kind=kind,
            occurred_at=utcnow(),
            member=get_member(data, "data"),
            raw=payload,
        )

    status = get_text(data, "status", "data.status")
    state = EVENT_STATES.get(name)
    if state is None:  # subscription-created: the status at send time says what it is
        if status not in CREATED_STATES:
            return Ignored(f"subscription-created with status {status!r} is not a change")
        kind, state = CREATED_STATES[status]
    member = get_member(get_object(data, "member", "data.member"), "data.member")
    return Event(
        source="memberpress",
        name=name,
        kind=kind,
        occurred_at=utcnow(),
        member=member,
        membership=get_membership(data, "membership", "data.membership"),
        subscription_id=get_text(data, "id", "data.id"),
        status=state,
        # Subscriptions carry no expires_at (their transactions do); read it if one does.
        access_ends_at=parse_wp_datetime(get_text(data, "expires_at", "data.expires_at")),
        raw=payload,
    )


def _payment(payload: dict[str, Any], name: str) -> Event | Ignored:
    """A paid transaction: the member, and the subscription it pays for (nested)."""
    data = get_object(payload, "data", "data")
    subscription = data.get("subscription")
    subscription_id = ""
    if isinstance(subscription, dict):
        subscription_id = get_text(subscription, "id", "data.subscription.id")
    if not subscription_id or subscription_id == "0":
        return Ignored(f"{name} without a subscription: nothing to remember")
    expires = get_text(data, "expires_at", "data.expires_at", max_length=40)
    return Event(
        source="memberpress",
        name=name,
        kind=EventKind.PAYMENT,
        occurred_at=utcnow(),
        member=get_member(get_object(data, "member", "data.member"), "data.member"),
        membership=get_membership(data, "membership", "data.membership"),
        subscription_id=subscription_id,
        access_ends_at=parse_wp_datetime(expires),
        amount=get_text(data, "amount", "data.amount", max_length=40),
        raw=payload,
    )
