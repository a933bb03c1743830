"""Bounce and complaint webhooks from the mail providers: they feed the suppression list.

    POST /hooks/postmark-bounce   Postmark bounce and spam-complaint webhooks
    POST /hooks/mailgun-events    Mailgun webhooks (failed, complained)
    POST /hooks/sendgrid-events   SendGrid Event Webhook (bounce, dropped, spamreport)

These are not membership sources (no Event, no dedupe, no spool): suppressing an address
twice is harmless, and a 503 while Redis is down is safe (every provider retries non-2xx
replies). Each endpoint is disabled (404) until its secret is set.

Replays: Postmark's key and SendGrid's signature cover the whole body, so a replay can
only repeat a suppression. Mailgun's signature does not cover the body: its timestamp must
be within 5 minutes of now and its token is accepted once (hooks/replay.py). Refused
credentials count towards FAREWELL_RATE_LIMIT per client; past it, that client gets 429
until the window ends, whatever it sends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Request, jsonify, request
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError

from worker.privacy import mask_email

from . import bounce_parsers as parsers
from . import ratelimit, replay
from .services import get_services

log = logging.getLogger(__name__)
bp = Blueprint("bounces", __name__)

# SendGrid batches events; its posts can be larger than a plugin's webhook.
SENDGRID_MAX_BODY = 2 * 1024 * 1024


@dataclass(frozen=True)
class Checked:
    """An authenticated delivery: what it suppresses, and its single-use token if any."""

    records: list[parsers.Suppress]
    token: str | None = None


def _postmark(request: Request, secret: str) -> Checked:
    auth = request.authorization
    password = auth.password if auth is not None and auth.type == "basic" else None
    parsers.check_postmark(secret, password, request.args.get("key"))
    return Checked(parsers.parse_postmark(request.get_data()))


def _mailgun(request: Request, secret: str) -> Checked:
    signed = parsers.check_mailgun(secret, request.get_data())
    return Checked(parsers.parse_mailgun(signed.data), signed.token)


def _sendgrid(request: Request, secret: str) -> Checked:
    request.max_content_length = SENDGRID_MAX_BODY
    body = request.get_data()
    parsers.check_sendgrid(
        secret,
        body,
        request.headers.get(parsers.SENDGRID_SIGNATURE_HEADER),
        request.headers.get(parsers.SENDGRID_TIMESTAMP_HEADER),
    )
    return Checked(parsers.parse_sendgrid(body))


Handler = Callable[[Request, str], Checked]
ENDPOINTS: dict[str, tuple[str, Handler]] = {
    "postmark-bounce": ("postmark_webhook_key", _postmark),
    "mailgun-events": ("mailgun_webhook_signing_key", _mailgun),
    "sendgrid-events": ("sendgrid_webhook_public_key", _sendgrid),
}


def _receive(name: str) -> ResponseReturnValue:
    services = get_services()
    setting, handler = ENDPOINTS[name]
    secret = getattr(services.settings, setting)
    if not secret:
        return jsonify(error=f"{name} is not enabled"), 404
    retry_after = ratelimit.blocked(services.store, services.settings, name)
    if retry_after is not None:
        return ratelimit.too_many(f"hooks/{name}", retry_after)
    try:
        checked = handler(request, secret)
        redis = services.store.redis
        if checked.token is not None and not replay.claim_token(
            redis, name, checked.token, parsers.MAILGUN_TOKEN_TTL
        ):
            raise parsers.BounceAuthError("this signature's token was already used (a replay)")
    except parsers.BounceAuthError as exc:
        retry_after = ratelimit.note_refusal(services.store, services.settings, name)
        if retry_after is not None:
            return ratelimit.too_many(f"hooks/{name}", retry_after)
        log.info("hooks/%s: rejected credentials (%s)", name, exc)
        return jsonify(error=f"authentication failed: {exc}"), 401
    except parsers.BouncePayloadError as exc:
        return jsonify(error=str(exc)), 400
    except RedisError as exc:
        return _unavailable(name, exc)
    records = checked.records
    if not records:
        return jsonify(status="ignored", reason="no hard bounce or complaint in it"), 200
    added = 0
    try:
        for record in records:
            added += services.store.suppress(record.email, record.reason)
    except RedisError as exc:
        if checked.token is not None:
            try:
                replay.release_token(redis, name, checked.token)
            except RedisError:
                pass  # expires by itself; the retry then waits out the TTL or goes stale
        return _unavailable(name, exc)
    for record in records:
        log.info(
            "hooks/%s: %s suppressed (%s: %s)",
            name,
            mask_email(record.email),
            record.reason,
            record.detail,
        )
    return jsonify(status="recorded", suppressed=added, seen=len(records)), 200


def _unavailable(name: str, exc: RedisError) -> ResponseReturnValue:
    log.warning("hooks/%s: Redis unavailable (%s); provider will retry", name, exc)
    return jsonify(error="storage unavailable, retry later"), 503


@bp.post("/hooks/postmark-bounce")
def postmark_bounce() -> ResponseReturnValue:
    return _receive("postmark-bounce")


@bp.post("/hooks/mailgun-events")
def mailgun_events() -> ResponseReturnValue:
    return _receive("mailgun-events")


@bp.post("/hooks/sendgrid-events")
def sendgrid_events() -> ResponseReturnValue:
    return _receive("sendgrid-events")
