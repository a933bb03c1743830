"""Stripe Billing (Dashboard → Developers → Webhooks).

`Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`: each v1 is HMAC-SHA256 (hex) of
`"{t}.{raw body}"` with the endpoint's signing secret. Any v1 may match (Stripe sends two
while a secret is being rolled); `t` must be within 300 s of now, so a captured delivery
cannot be replayed later. Stripe retries for 3 days, in any order, with duplicates.

Subscription events carry only the customer *id*: the member's email is looked up from
Stripe's API by the worker (worker/stripe_api.py), never while Stripe waits for our reply.
So the Event's member has an empty email and `id` = the customer id until then.

What counts as the cancellation: a member who cancels in the Customer Portal usually keeps
access to the end of the period, which Stripe reports at once as
`customer.subscription.updated` with `cancel_at_period_end: true` (with the member's
`cancellation_details.feedback`), and weeks later as `customer.subscription.deleted`.
Farewell acts on whichever comes first, as the playbook says (the feedback request goes
out while the decision is fresh), and both share one dedupe identity so the second never
starts another sequence: name `subscription.cancelled`, status `canceled@<canceled_at>`.
Stripe keeps `canceled_at` at the time of the member's request when the subscription is
later ended, while a second, later cancellation (after undoing the first) has a new one.
Comebacks are single Stripe events: their identity carries the event's `created` time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from flask import Request

from worker.events import Event, EventKind, Membership, MemberToResolve

from .errors import AuthError, Ignored, PayloadError
from .payload import (
    check_signed,
    get_bool,
    get_object,
    get_text,
    load_object,
    parse_unix,
    signed_timestamp,
)

SECRET_SETTING = "stripe_secret"  # noqa: S105 - a field name, not a secret
SIGNATURE_HEADER = "Stripe-Signature"
TOLERANCE = 300  # seconds, as Stripe's own libraries
CANCELLED_NAME = "subscription.cancelled"  # ours: either Stripe event that announces it

# Single Stripe events with a fixed meaning (besides the cancellation pair above).
OTHER_KINDS = {
    "customer.subscription.created": EventKind.REACTIVATED,
    "customer.subscription.resumed": EventKind.RESUMED,
    "customer.subscription.paused": EventKind.PAUSED,
}


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The hex v1 signature of a payload at a time (for tests and the docs)."""
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(header: str, payload: bytes, secret: str, now: float | None = None) -> None:
    """Raise AuthError unless some v1 signature matches and the timestamp is fresh."""
    timestamp, signatures = _parse_header(header)
    expected = sign(payload, secret, timestamp)
    check_signed(signatures, expected, timestamp, TOLERANCE, "timestamp", now)


def _parse_header(header: str) -> tuple[int, list[str]]:
    if not header:
        raise AuthError(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and signed_timestamp(value) is not None:
            timestamp = signed_timestamp(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None:
        raise AuthError(f"{SIGNATURE_HEADER} has no timestamp")
    if not signatures:
        raise AuthError(f"{SIGNATURE_HEADER} has no v1 signature")
    return timestamp, signatures


def authenticate(request: Request, secret: str) -> None:
    verify(request.headers.get(SIGNATURE_HEADER, ""), request.get_data(cache=True), secret)


def parse(body: bytes, headers: Mapping[str, str] | None = None) -> Event | Ignored:
    payload = load_object(body)
    name = get_text(payload, "type", "type", required=True)
    if not name.startswith("customer.subscription."):
        return Ignored(f"event {name!r} is not one Farewell acts on")
    data = get_object(payload, "data", "data")
    sub = get_object(data, "object", "data.object")
    cancel_at_period_end = get_bool(sub, "cancel_at_period_end", "data.object.cancel_at_period_end")

    if name == "customer.subscription.deleted" or (
        name == "customer.subscription.updated" and cancel_at_period_end
    ):
        kind = EventKind.CANCELLED
        canceled_at = sub.get("canceled_at")
        event_name = CANCELLED_NAME
        status = f"canceled@{canceled_at}" if isinstance(canceled_at, int) else "canceled"
        ends = parse_unix(sub.get("ended_at")) or parse_unix(sub.get("cancel_at"))
        ends = ends or parse_unix(_current_period_end(sub))
    elif name == "customer.subscription.updated" and _undid_cancellation(data):
        kind, event_name, status, ends = EventKind.RESUMED, name, "uncanceled", None
    elif name in OTHER_KINDS:
        kind, event_name, ends = OTHER_KINDS[name], name, None
        status = get_text(sub, "status", "data.object.status")
    else:
        return Ignored(f"{name} without a cancellation or comeback is not one Farewell acts on")

    customer = get_text(sub, "customer", "data.object.customer", required=True)
    created = parse_unix(payload.get("created"))
    if created is None:
        raise PayloadError("created must be a Unix timestamp")
    if kind is not EventKind.CANCELLED:
        # These are single Stripe events: the creation time (kept across Stripe's retries)
        # tells a second undo, pause or resume from a redelivery of the first.
        status = f"{status}@{payload['created']}"
    return Event(
        source="stripe",
        name=event_name,
        kind=kind,
        occurred_at=created,
        member=MemberToResolve(id=customer),  # the worker looks the address up
        membership=_membership(sub),
        subscription_id=get_text(sub, "id", "data.object.id", required=True),
        status=status,
        access_ends_at=ends,
        raw=payload,
    )


def _undid_cancellation(data: dict[str, Any]) -> bool:
    """`updated` with cancel_at_period_end now false and previously true."""
    previous = data.get("previous_attributes")
    return isinstance(previous, dict) and previous.get("cancel_at_period_end") is True


def _current_period_end(sub: dict[str, Any]) -> Any:
    """Top-level before API version 2025-03-31, on each subscription item since."""
    if sub.get("current_period_end"):
        return sub["current_period_end"]
    first = _first_item(sub)
    return first.get("current_period_end") if first else None


def _first_item(sub: dict[str, Any]) -> dict[str, Any] | None:
    items = sub.get("items")
    rows = items.get("data") if isinstance(items, dict) else None
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        return rows[0]
    return None


def _membership(sub: dict[str, Any]) -> Membership | None:
    """The first item's product (the playbook keys on it); the price nickname as title."""
    first = _first_item(sub)
    price = (first or {}).get("price") or (first or {}).get("plan")
    if not isinstance(price, dict):
        return None
    product = price.get("product")
    if isinstance(product, dict):  # expanded
        return Membership(id=str(product.get("id", "")), title=str(product.get("name") or ""))
    if not isinstance(product, str) or not product:
        return None
    nickname = price.get("nickname")
    return Membership(id=product, title=nickname if isinstance(nickname, str) else "")
