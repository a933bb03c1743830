"""WooCommerce Subscriptions (WooCommerce → Settings → Advanced → Webhooks).

Each delivery is signed: `X-WC-Webhook-Signature` is base64(HMAC-SHA256(raw body, secret)),
and `X-WC-Webhook-Topic` names the topic. The body is the subscription as the REST API
returns it (v3: `*_gmt` dates; v1: UTC dates without the suffix). When the owner saves an
active webhook, WooCommerce first sends an unsigned, form-encoded `webhook_id=N` ping and
refuses to activate the webhook unless it gets a 2xx.

WooCommerce fires `subscription.updated` several times for one change (every save, every
status hook) with a fresh `X-WC-Webhook-Delivery-ID` each time, so the dedupe identity is
the subscription id + status, never the delivery.

One cancellation, not two: a member who cancels from My Account gets `pending-cancel`
(access runs to the end of the paid period), then WooCommerce moves the subscription to
`cancelled` when that period ends. WooCommerce Subscriptions stamps the cancelled date when
the status becomes `pending-cancel` and keeps it on the move to `cancelled` (it only sets it
then if it was empty), so both statuses normalize to status `cancelled@<cancelled date>`
under the same event name and share one event id: the first to arrive starts the sequence,
the second is a duplicate (or, after the dedupe window, finds the sequence already created
under that id and sends nothing). A later, separate cancellation gets a new date.

Comebacks: `active` arrives on every renewal too (on-hold -> active) and carries no old
status, so its identity includes `date_modified`: re-sends of one update dedupe, while a
reactivation soon after a renewal is not swallowed as a duplicate of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from flask import Request

from worker.events import Event, EventKind, Member, Membership, utcnow

from .errors import AuthError, Ignored, PayloadError
from .payload import (
    get_email,
    get_object,
    get_text,
    load_object,
    normalize_locale,
    parse_iso_datetime,
)

SECRET_SETTING = "woocommerce_secret"  # noqa: S105 - a field name, not a secret
SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
_PING = re.compile(rb"^webhook_id=\d{1,20}$")

# Status on `subscription.updated` -> (kind, the status used for dedupe).
UPDATED_STATUSES = {
    "pending-cancel": (EventKind.CANCELLED, "cancelled"),
    "cancelled": (EventKind.CANCELLED, "cancelled"),
    "active": (EventKind.RESUMED, "active"),
    "expired": (EventKind.EXPIRED, "expired"),
}
# The date that tells one real change from another, per normalized status (see above).
_IDENTITY_DATES = {"cancelled": "cancelled_date", "active": "date_modified"}
# WPML (the usual multilingual plugin) keeps the order's language in this meta field.
LOCALE_META_KEYS = ("wpml_language", "locale")


def sign(body: bytes, secret: str) -> str:
    """WooCommerce's signature of a body (WC_Webhook::generate_signature)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def ping(request: Request, body: bytes) -> str | None:
    """The activation ping: `webhook_id=N`, form-encoded, with no signature."""
    if request.headers.get(SIGNATURE_HEADER) or not _PING.match(body.strip()):
        return None
    return body.strip().decode()


def authenticate(request: Request, secret: str) -> None:
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not given:
        raise AuthError(f"missing {SIGNATURE_HEADER} header")
    expected = sign(request.get_data(cache=True), secret)
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise AuthError(f"{SIGNATURE_HEADER} does not match the body")


def parse(body: bytes, headers: Mapping[str, str] | None = None) -> Event | Ignored:
    """The topic is in a header, not in the body."""
    topic = (headers or {}).get(TOPIC_HEADER, "").strip()
    if not topic:
        raise PayloadError(f"{TOPIC_HEADER} header is missing")
    if topic not in ("subscription.updated", "subscription.created"):
        return Ignored(f"topic {topic!r} is not one Farewell acts on")
    payload = load_object(body)
    status = get_text(payload, "status", "status", required=True)
    if topic == "subscription.created":
        kind, dedupe_status = EventKind.REACTIVATED, status
    elif status in UPDATED_STATUSES:
        kind, dedupe_status = UPDATED_STATUSES[status]
    else:
        return Ignored(f"subscription status {status!r} is not one Farewell acts on")
    stamp = _IDENTITY_DATES.get(dedupe_status) if topic == "subscription.updated" else None
    raw_date = _raw_date(payload, stamp) if stamp else ""
    if raw_date:
        dedupe_status = f"{dedupe_status}@{raw_date}"

    billing = get_object(payload, "billing", "billing")
    member = Member(
        email=get_email(billing, "email", "billing.email"),
        id=get_text(payload, "customer_id", "customer_id"),
        first_name=get_text(billing, "first_name", "billing.first_name"),
        last_name=get_text(billing, "last_name", "billing.last_name"),
        locale=normalize_locale(_meta(payload, LOCALE_META_KEYS)),
    )
    return Event(
        source="woocommerce",
        name=topic,
        kind=kind,
        occurred_at=_date(payload, "date_modified") or utcnow(),
        member=member,
        membership=_membership(payload),
        subscription_id=get_text(payload, "id", "id", required=True),
        status=dedupe_status,
        access_ends_at=_date(payload, "end_date") if kind is EventKind.CANCELLED else None,
        raw=payload,
    )


def _membership(payload: dict[str, Any]) -> Membership | None:
    """The subscribed product: the first line item."""
    items = payload.get("line_items")
    if not isinstance(items, list) or not items:
        return None
    first = items[0]
    if not isinstance(first, dict):
        raise PayloadError("line_items[0] must be an object")
    product_id = get_text(first, "product_id", "line_items[0].product_id")
    if not product_id or product_id == "0":
        return None
    return Membership(id=product_id, title=get_text(first, "name", "line_items[0].name"))


def _raw_date(payload: dict[str, Any], name: str) -> str:
    """v3 sends `<name>_gmt`; v1 sends `<name>` already in UTC. Zero dates mean 'none'."""
    for key in (f"{name}_gmt", name):
        value = payload.get(key)
        if isinstance(value, str) and value.strip() and not value.startswith("0"):
            return value.strip()[:40]
    return ""


def _date(payload: dict[str, Any], name: str):
    value = _raw_date(payload, name)
    return parse_iso_datetime(value) if value else None


def _meta(payload: dict[str, Any], keys: tuple[str, ...]) -> str:
    meta = payload.get("meta_data")
    if not isinstance(meta, list):
        return ""
    for entry in meta:
        if isinstance(entry, dict) and entry.get("key") in keys:
            value = entry.get("value")
            if isinstance(value, str):
                return value.strip()[:20]
    return ""
