"""`POST /hooks/<source>`: verify, parse, dedupe, record, enqueue, reply in milliseconds.

The flow is the same for every source (like django-anymail's base webhook view); the
source modules only authenticate and parse. An authenticated event is durable before any
2xx: in Redis, or in the local spool when Redis is unreachable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError
from werkzeug.exceptions import RequestEntityTooLarge

from worker import logs
from worker.store import RECEIVED_METRIC

from . import ratelimit
from .services import Services, get_services
from .sources import SOURCES, AuthError, Ignored, PayloadError
from .sources.payload import collect_oddities

log = logging.getLogger(__name__)
bp = Blueprint("receiver", __name__)
ODDITIES_METRIC = "farewell_payload_oddities_total"  # optional fields read as absent


def _error(status: int, message: str) -> ResponseReturnValue:
    return jsonify(error=message), status


@bp.post("/hooks/<source>")
def receive(source: str) -> ResponseReturnValue:
    services = get_services()
    module = SOURCES.get(source)
    secret = getattr(services.settings, module.SECRET_SETTING, "") if module else ""
    if module is None or not secret:
        # A source without a configured secret is disabled: never open.
        return _error(404, f"no enabled source named {source!r}")

    count = _counter(services, source)
    try:
        body = request.get_data(cache=True)  # 413 past MAX_CONTENT_LENGTH
    except RequestEntityTooLarge:
        count("too_large")
        raise
    ping = getattr(module, "ping", None)  # optional: an unsigned "are you there?" delivery
    detail = ping(request, body) if ping else None
    if detail is not None:
        count("ping")
        _record_ping(services, source, detail)
        return jsonify(status="ping"), 200
    try:
        module.authenticate(request, secret)
    except AuthError as exc:
        # Only refused requests count towards the limit: a real wave is never throttled
        # (MemberPress and WooCommerce do not retry a 429). Counted in the metrics too.
        retry_after = ratelimit.note_refusal(services.store, services.settings, source)
        if retry_after is not None:
            log.warning("hooks/%s: too many refused requests from one address, 429", source)
            response = jsonify(
                error=f"too many refused webhooks from this address; retry after {retry_after} s"
            )
            response.headers["Retry-After"] = str(retry_after)
            return response, 429
        log.info("hooks/%s: rejected credentials (%s)", source, exc)
        return _error(401, f"authentication failed: {exc}")
    with collect_oddities() as oddities:
        try:
            result = module.parse(body, request.headers)
        except PayloadError as exc:
            count("invalid")
            log.warning("hooks/%s: authenticated delivery not usable: %s", source, exc)
            if getattr(module, "ACK_UNUSABLE", False):
                # This plugin drops (or disables the webhook) on a 4xx: say why, in a 200.
                return jsonify(status="invalid", reason=str(exc), error=str(exc)), 200
            return _error(400, str(exc))
    if oddities:
        _note_oddities(services, source, oddities)

    if isinstance(result, Ignored):
        count("ignored")
        return jsonify(status="ignored", reason=result.reason), 200

    event_id = result.event_id
    logs.set_event_id(event_id)
    kind = result.kind.value
    try:
        outcome, event_id = services.accept(result, counted=True)
    except RedisError as exc:
        services.spool.append(result)
        log.warning(
            "hooks/%s: Redis unavailable (%s); event %s spooled",
            source,
            type(exc).__name__,
            event_id,
        )
        return jsonify(status="queued", event_id=event_id, spooled=True), 202
    if outcome.value in ("duplicate", "recorded"):
        log.info("hooks/%s: %s event %s %s", source, kind, event_id, outcome.value)
        return jsonify(status=outcome.value, event_id=event_id), 200
    log.info("hooks/%s: %s event %s queued", source, kind, event_id)
    return jsonify(status="queued", event_id=event_id), 202


def _record_ping(services: Services, source: str, detail: str) -> None:
    """A ping carries nothing to act on; remember it for the operator, best effort."""
    log.info("hooks/%s: ping (%s)", source, detail)
    try:
        services.store.record_ping(source, detail)
    except RedisError as exc:
        log.warning("hooks/%s: ping not recorded, Redis unavailable (%s)", source, exc)


def _note_oddities(services: Services, source: str, oddities: list[str]) -> None:
    """Optional fields read as absent: accepted anyway, but the owner should know."""
    log.warning("hooks/%s: accepted with oddities: %s", source, "; ".join(oddities[:10]))
    for field_ in dict.fromkeys(o.split(" ", 1)[0] for o in oddities[:5]):  # a few at most
        services.store.count(ODDITIES_METRIC, source=source, field=field_)


def _counter(services: Services, source: str) -> Callable[..., None]:
    def count(status: str, kind: str = "none") -> None:
        services.store.count(RECEIVED_METRIC, source=source, kind=kind, status=status)

    return count
