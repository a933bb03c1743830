"""Providers' bounce and complaint webhooks: authenticate, then read which addresses must
never be mailed again. Pure: bytes and headers in, `Suppress` records out.

Only hard bounces and spam complaints suppress; soft bounces, deliveries, opens and the
like are ignored (the provider retries soft bounces itself).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

BOUNCED = "bounced"
COMPLAINED = "complained"


class BounceAuthError(Exception):
    """Missing or wrong credentials or signature (401)."""


class BouncePayloadError(Exception):
    """The body is not what the provider sends (400)."""


@dataclass(frozen=True)
class Suppress:
    email: str
    reason: str  # BOUNCED | COMPLAINED
    detail: str  # the provider's own words for it, for operators


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError as exc:
        raise BouncePayloadError("body is nested too deeply") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BouncePayloadError("body is not JSON") from exc


def _address(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and "@" in value else None


# --- Postmark -----------------------------------------------------------------------------
# Postmark has no signature: it supports HTTP basic auth credentials in the webhook URL, so
# the key is the basic-auth password (any user name), or `?key=` for setups without it.

POSTMARK_HARD_TYPES = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}


def check_postmark(secret: str, password: str | None, query_key: str | None) -> None:
    given = password if password is not None else query_key
    if not given:
        raise BounceAuthError("no credentials: use https://user:<key>@host/... or ?key=<key>")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise BounceAuthError("wrong key")


def parse_postmark(body: bytes) -> list[Suppress]:
    data = _json(body)
    if not isinstance(data, dict):
        raise BouncePayloadError("expected one JSON object")
    email = _address(data.get("Email"))
    record_type = data.get("RecordType") or ""
    bounce_type = data.get("Type") or ""
    if record_type == "SpamComplaint" or bounce_type == "SpamComplaint":
        if email is None:
            raise BouncePayloadError("Email is missing")
        return [Suppress(email, COMPLAINED, "SpamComplaint")]
    if record_type not in ("", "Bounce"):
        return []
    # `Inactive`: Postmark itself now refuses this address (406), so stop trying too.
    if bounce_type in POSTMARK_HARD_TYPES or data.get("Inactive") is True:
        if email is None:
            raise BouncePayloadError("Email is missing")
        return [Suppress(email, BOUNCED, str(bounce_type or "Inactive"))]
    return []


# --- Mailgun ------------------------------------------------------------------------------
# JSON `{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}`; the
# signature is hex HMAC-SHA256 of timestamp + token under the webhook signing key. It does
# not cover the body: one captured signature would sign any event. So the timestamp must be
# fresh and each token is accepted once (the caller remembers tokens, bounces.py).

MAILGUN_TOLERANCE = 5 * 60  # seconds either side of now
MAILGUN_TOKEN_TTL = 2 * MAILGUN_TOLERANCE  # a token is remembered longer than it is fresh
_MAX_TIMESTAMP_DIGITS = 12  # Unix seconds until the year 33658: longer is not a time


@dataclass(frozen=True)
class MailgunPayload:
    data: dict[str, Any]
    token: str  # signed, single use


def check_mailgun(secret: str, body: bytes, now: float | None = None) -> MailgunPayload:
    """Verify the signature inside the body and the freshness of its timestamp; return the
    parsed payload and its token (the caller refuses a token already seen)."""
    data = _json(body)
    if not isinstance(data, dict):
        raise BouncePayloadError("expected one JSON object")
    sig = data.get("signature")
    if not isinstance(sig, dict):
        raise BounceAuthError("no signature object")
    timestamp, token, signature = (str(sig.get(k, "")) for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and signature):
        raise BounceAuthError("signature is incomplete")
    key = secret.encode()
    expected = hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII strings with a TypeError.
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise BounceAuthError("signature does not match")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
        raise BounceAuthError("signature.timestamp must be Unix seconds")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > MAILGUN_TOLERANCE:
        raise BounceAuthError(
            f"signature.timestamp is {int(age)} s from now (tolerance {MAILGUN_TOLERANCE} s)"
        )
    return MailgunPayload(data, token)


def parse_mailgun(data: dict[str, Any]) -> list[Suppress]:
    event = data.get("event-data")
    if not isinstance(event, dict):
        raise BouncePayloadError("event-data is missing")
    name = event.get("event")
    email = _address(event.get("recipient"))
    if name == "complained":
        if email is None:
            raise BouncePayloadError("event-data.recipient is missing")
        return [Suppress(email, COMPLAINED, "complained")]
    if name == "failed" and event.get("severity") == "permanent":
        if email is None:
            raise BouncePayloadError("event-data.recipient is missing")
        return [Suppress(email, BOUNCED, str(event.get("reason") or "failed"))]
    return []


# --- SendGrid -----------------------------------------------------------------------------
# A JSON array of events. Signed Event Webhook: ECDSA P-256 / SHA-256 over timestamp + raw
# body, base64 DER signature in X-Twilio-Email-Event-Webhook-Signature, the verification
# key shown by SendGrid as base64 DER (PEM also accepted).

SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


@functools.lru_cache(maxsize=4)  # parsed once per process, not on every webhook
def load_sendgrid_key(public_key: str) -> ec.EllipticCurvePublicKey:
    try:
        if "BEGIN PUBLIC KEY" in public_key:
            key = load_pem_public_key(public_key.encode())
        else:
            key = load_der_public_key(base64.b64decode(public_key))
    except (ValueError, binascii.Error) as exc:
        raise BounceAuthError("FAREWELL_SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise BounceAuthError("FAREWELL_SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA key")
    return key


def check_sendgrid(
    public_key: str, body: bytes, signature: str | None, timestamp: str | None
) -> None:
    if not signature or not timestamp:
        raise BounceAuthError(f"{SENDGRID_SIGNATURE_HEADER} or its timestamp is missing")
    key = load_sendgrid_key(public_key)
    try:
        key.verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise BounceAuthError("signature does not match") from exc


SENDGRID_DROP_REASONS = {"Bounced Address": BOUNCED, "Invalid": BOUNCED}


def parse_sendgrid(body: bytes) -> list[Suppress]:
    events = _json(body)
    if not isinstance(events, list):
        raise BouncePayloadError("expected a JSON array of events")
    found = []
    for event in events:
        if not isinstance(event, dict):
            raise BouncePayloadError("every event must be an object")
        name = event.get("event")
        email = _address(event.get("email"))
        reason = None
        if name == "spamreport":
            reason = COMPLAINED
        elif name == "bounce" and event.get("type", "bounce") == "bounce":
            reason = BOUNCED  # "blocked" is a temporary refusal: not suppressed
        elif name == "dropped":
            text = str(event.get("reason", ""))
            if text == "Spam Reporting Address":
                reason = COMPLAINED
            else:
                reason = SENDGRID_DROP_REASONS.get(text)
        if reason is None:
            continue
        if email is None:
            raise BouncePayloadError(f"a {name} event has no email")
        found.append(Suppress(email, reason, str(name)))
    return found
