"""Standard Webhooks (standardwebhooks.com): the generic door for Restrict Content Pro,
Zapier, Make or any snippet of your own.

Headers `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`, a
space-separated list of `v1,<base64 HMAC-SHA256>` of `"{id}.{timestamp}.{raw body}"`, keyed
with the base64-decoded part of the `whsec_...` secret. Any v1 may match; the timestamp
must be within 5 minutes of now. The body follows our small schema, documented in
docs/sources/standard.md:

    {"type": "membership.cancelled", "timestamp": "2024-05-01T10:00:00Z",
     "data": {"member": {"email", "id", "first_name", "last_name", "locale"},
              "membership": {"id", "title"}, "subscription_id", "access_ends_at"}}

Dedupe identity: type + subscription id (or member id, or email) + `data.status`, like
every source; `webhook-id` is not used, so a sender that makes a fresh id per retry still
dedupes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from flask import Request

from worker.events import Event, EventKind, utcnow

from .errors import AuthError, Ignored
from .payload import (
    check_signed,
    get_member,
    get_membership,
    get_object,
    get_text,
    load_object,
    note_oddity,
    parse_iso_datetime,
    signed_timestamp,
)

SECRET_SETTING = "standard_secret"  # noqa: S105 - a field name, not a secret
TOLERANCE = 5 * 60

TYPES = {
    "membership.cancelled": EventKind.CANCELLED,
    "membership.expired": EventKind.EXPIRED,
    "membership.paused": EventKind.PAUSED,
    "membership.resumed": EventKind.RESUMED,
    "membership.reactivated": EventKind.REACTIVATED,
    "member.erased": EventKind.ERASED,
}


def secret_bytes(secret: str) -> bytes:
    """The HMAC key: the base64 part of `whsec_...` (padding optional, as senders vary)."""
    key = secret.removeprefix("whsec_")
    return base64.b64decode(key + "=" * (-len(key) % 4))


def sign(msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """`v1,<base64>` for one message (what a sender puts in webhook-signature)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(headers: Mapping[str, str], body: bytes, secret: str, now: float | None = None) -> None:
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    given = headers.get("webhook-signature", "")
    for name, value in (
        ("webhook-id", msg_id),
        ("webhook-timestamp", stamp),
        ("webhook-signature", given),
    ):
        if not value:
            raise AuthError(f"missing {name} header")
    timestamp = signed_timestamp(stamp)
    if timestamp is None:
        raise AuthError("webhook-timestamp must be Unix seconds")
    expected = sign(msg_id, timestamp, body, secret)
    # Other schemes (v1a, ...) in the header simply never match.
    check_signed(given.split(), expected, timestamp, TOLERANCE, "webhook-timestamp", now)


def authenticate(request: Request, secret: str) -> None:
    verify(request.headers, request.get_data(cache=True), secret)


def parse(body: bytes, headers: Mapping[str, str] | None = None) -> Event | Ignored:
    payload = load_object(body)
    name = get_text(payload, "type", "type", required=True)
    kind = TYPES.get(name)
    if kind is None:
        known = ", ".join(TYPES)
        return Ignored(f"type {name!r} is not one Farewell acts on (known: {known})")
    data = get_object(payload, "data", "data")
    member = get_member(get_object(data, "member", "data.member"), "data.member")
    membership = None
    if data.get("membership") is not None:
        membership = get_membership(data, "membership", "data.membership")
    return Event(
        source="standard",
        name=name,
        kind=kind,
        occurred_at=_datetime(payload, "timestamp", "timestamp") or utcnow(),
        member=member,
        membership=membership,
        subscription_id=get_text(data, "subscription_id", "data.subscription_id"),
        status=get_text(data, "status", "data.status"),
        access_ends_at=_datetime(data, "access_ends_at", "data.access_ends_at"),
        raw=payload,
    )


def _datetime(data: dict, key: str, path: str):
    text = get_text(data, key, path, max_length=40)
    if not text:
        return None
    parsed = parse_iso_datetime(text)
    if parsed is None:
        note_oddity(path, "is not an ISO 8601 date-time, like 2024-05-01T10:00:00Z")
    return parsed
