"""`POST /hooks/<source>`: verify, parse, dedupe, record, enqueue, reply in milliseconds.

The flow is the same for every source (like django-anymail's base webhook view); the
source modules only authenticate and parse. An authenticated event is durable before any
2xx: in Redis, or in the local spool when Redis is unreachable.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError
from werkzeug.exceptions import RequestEntityTooLarge

from worker import logs
from worker.privacy import mask_ip
from worker.store import RECEIVED_METRIC, metric_field
from worker.webhook_log import Refusal

from . import connections, ratelimit
from .ratelimit import client_address
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
    if module is None:
        return _error(404, f"no source named {source!r}; known: {', '.join(SOURCES)}")
    secret = connections.source_secret(services, source, module)
    if not secret:
        # A source without a configured secret is disabled: never open.
        message = connections.disabled_message(source)
        log.info("hooks/%s: 404, %s", source, message)
        return _error(404, message)

    try:
        body = request.get_data(cache=True)  # 413 past MAX_CONTENT_LENGTH
    except RequestEntityTooLarge:
        _refused(source, Refusal.TOO_LARGE, f"body over {services.settings.max_body_bytes} bytes")
        raise
    ping = getattr(module, "ping", None)  # optional: an unsigned "are you there?" delivery
    detail = ping(request, body) if ping else None
    if detail is not None:
        connections.note(lambda r: r.ping(source, _metric(source, "ping")), source)
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
        _refused(source, connections.refusal_for(source), str(exc), counted=True)
        return _error(401, f"authentication failed: {exc}")
    with collect_oddities() as oddities:
        try:
            result = module.parse(body, request.headers)
        except PayloadError as exc:
            # An authenticated delivery that is not usable. Some plugins drop (or disable
            # the webhook) on a 4xx: to those, say why in a 200.
            acked = getattr(module, "ACK_UNUSABLE", False)
            _refused(source, Refusal.INVALID_BODY, str(exc), status=200 if acked else 400)
            if acked:
                return jsonify(status="invalid", reason=str(exc), error=str(exc)), 200
            return _error(400, str(exc))
    if oddities:
        _note_oddities(services, source, oddities)

    if isinstance(result, Ignored):
        log.info("hooks/%s: ignored, %s", source, result.reason)
        metric = _metric(source, "ignored")
        connections.note(lambda r: r.ignored(source, "", result.reason, metric), source)
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
    if outcome.value == "recorded":  # the accept script records queued and duplicates only
        name = result.name
        connections.note(lambda r: r.recorded(source, name, event_id), source)
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


def _metric(source: str, status: str) -> str:
    return metric_field(RECEIVED_METRIC, {"source": source, "kind": "none", "status": status})


_REFUSAL_STATUS = {Refusal.INVALID_BODY: "invalid", Refusal.TOO_LARGE: "too_large"}


def _refused(
    source: str, refusal: Refusal, detail: str, *, status: int = 401, counted: bool = False
) -> None:
    """Log why a delivery was refused (the reply's own words: never a secret) and record
    it for the Connections page. `counted`: the metric was added already (rate limiter)."""
    client = mask_ip(client_address())
    code = 413 if refusal is Refusal.TOO_LARGE else status
    # An invalid body passed authentication: the owner's own plugin sent something unusable.
    level = logging.WARNING if refusal is Refusal.INVALID_BODY else logging.INFO
    log.log(level, "hooks/%s: %s refused from %s, %s: %s", source, code, client, refusal, detail)
    metric = "" if counted else _metric(source, _REFUSAL_STATUS.get(refusal, "unauthorized"))
    connections.note(lambda r: r.refused(source, refusal, detail, client, metric), source)
