"""WooCommerce Subscriptions (WooCommerce → Settings → Advanced → Webhooks).

Each delivery is signed: `X-WC-Webhook-Signature` is base64(HMAC-SHA256(raw body, secret)),
and `X-WC-Webhook-Topic` names the topic. The body is the subscription as the REST API
returns it (v3: `*_gmt` dates; v1: UTC dates without the suffix). When the owner saves an
active webhook, WooCommerce first sends an unsigned, form-encoded `webhook_id=N` ping and
refuses to activate the webhook unless it gets a 2xx.

WooCommerce builds the body when it sends (Action Scheduler), not when the change
happened, and fires `subscription.updated` several times for one change (every save, every
status hook): deliveries are deduplicated by subscription state
(worker/subscription_state.py), never by delivery id. `pending-cancel` (access runs to the
end of the paid period) and the later `cancelled` are one state, so one cancellation. A
`subscription.created` reports the state at send time too: `active` is a new subscription
(a comeback if the member had cancelled), `pending-cancel` is a member who cancelled before
the queue ran (a cancellation, not a comeback), `pending` an unpaid checkout (nothing).

WooCommerce disables a webhook after more than 5 consecutive non-2xx replies, so an
authenticated delivery Farewell cannot use (a REST-created subscription's signed `[]`) is
answered 200 with the reason. The secret the owner typed is stored by WordPress through
`sanitize_text_field` and HTML-decoded before signing: `signing_secret` does the same, and a
signature by either form is accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
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
    note_oddity,
    parse_iso_datetime,
)

SECRET_SETTING = "woocommerce_secret"  # noqa: S105 - a field name, not a secret
SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
_PING = re.compile(rb"^webhook_id=\d{1,20}$")
# WordPress's text sanitizing and wp_specialchars_decode, as far as a secret needs them.
_SCRIPT_STYLE = re.compile(r"<(script|style)[^>]*?>.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>?")
_BREAKS = re.compile(r"[\r\n\t ]+")
_OCTET = re.compile(r"%[a-fA-F0-9]{2}")
_ENTITIES = (
    ("&lt;", "<"),
    ("&gt;", ">"),
    ("&quot;", '"'),
    ("&#039;", "'"),
    ("&#39;", "'"),
    ("&#x27;", "'"),
    ("&amp;", "&"),
)
ACK_UNUSABLE = True  # an authenticated body Farewell cannot use: 200, never a 4xx

# Status on `subscription.updated` -> (kind, the subscription state it reports).
UPDATED_STATUSES = {
    "pending-cancel": (EventKind.CANCELLED, "cancelled"),
    "cancelled": (EventKind.CANCELLED, "cancelled"),
    "active": (EventKind.RESUMED, "active"),
    "expired": (EventKind.EXPIRED, "expired"),
}
# On `subscription.created`, the same statuses, but `active` is a new subscription.
CREATED_STATUSES = {
    **UPDATED_STATUSES,
    "active": (EventKind.REACTIVATED, "active"),
    "pending": (EventKind.OTHER, "pending"),
}
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


def signing_secret(typed: str) -> str:
    """The key WooCommerce really signs with, from the secret as typed in its admin:
    WordPress's sanitize_text_field when saved (tags stripped, whitespace collapsed,
    `%XX` octets removed, trimmed), then the HTML special characters decoded."""
    text = typed
    if "<" in text:
        text = _TAG.sub("", _SCRIPT_STYLE.sub("", text))
    text = _BREAKS.sub(" ", text).strip()
    found = False
    while match := _OCTET.search(text):  # until none is left, even one re-formed
        text = text.replace(match.group(), "")
        found = True
    if found:
        text = re.sub(" +", " ", text).strip()
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


def authenticate(request: Request, secret: str) -> None:
    given = request.headers.get(SIGNATURE_HEADER, "").strip().encode()
    if not given:
        raise AuthError(f"missing {SIGNATURE_HEADER} header")
    body = request.get_data(cache=True)
    matched = False
    for key in dict.fromkeys((secret, signing_secret(secret))):  # both, no early exit
        matched |= hmac.compare_digest(given, sign(body, key).encode())
    if not matched:
        raise AuthError(f"{SIGNATURE_HEADER} does not match the body")


def parse(body: bytes, headers: Mapping[str, str] | None = None) -> Event | Ignored:
    """The topic is in a header, not in the body."""
    topic = (headers or {}).get(TOPIC_HEADER, "").strip()
    if not topic:
        raise PayloadError(f"{TOPIC_HEADER} header is missing")
    if topic not in ("subscription.updated", "subscription.created"):
        return Ignored(f"topic {topic!r} is not one Farewell acts on")
    if body.strip() == b"[]":
        # A subscription created through the REST API v3 fires this, signed, empty.
        return Ignored(f"{topic} with an empty body ([]): nothing to act on")
    payload = load_object(body)
    status = get_text(payload, "status", "status", required=True)
    statuses = CREATED_STATUSES if topic == "subscription.created" else UPDATED_STATUSES
    if status not in statuses:
        return Ignored(f"{topic} with status {status!r} is not one Farewell acts on")
    kind, state = statuses[status]

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
        status=state,
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
        note_oddity("line_items[0]", "must be an object")
        return None
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


def _date(payload: dict[str, Any], name: str) -> datetime | None:
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
