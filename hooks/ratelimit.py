"""Per-source, per-client limit on refused webhooks: 429 with Retry-After for a flood.

Only requests that fail authentication are counted, in a fixed window in Redis
(`FAREWELL_RATE_LIMIT`, e.g. `300/60`) shared by every web process. Authenticated
deliveries are never limited: a cancellation wave from the site's own server is real,
and the plugins do not retry a 429. When Redis does not answer the limiter allows the
request: a limiter must never be the reason an event is lost.

Doors guarded by a guessable credential (the admin's password, the bounce endpoints'
keys) are also locked for a client past the limit (`blocked`), right credentials included,
until the window ends: otherwise a brute force would still learn which guess was right.
Their real senders (the owner, the mail providers) are not the client being locked out,
and the providers retry.
"""

from __future__ import annotations

import logging
import time

from flask import Response, jsonify, request
from redis.exceptions import RedisError

from worker.settings import Settings
from worker.store import METRICS_KEY, RECEIVED_METRIC, Store, metric_field, ratelimit_key

log = logging.getLogger(__name__)


def client_address() -> str:
    """The peer address (X-Forwarded-For is honoured only via FAREWELL_TRUSTED_PROXIES)."""
    return request.remote_addr or "unknown"


def note_refusal(
    store: Store, settings: Settings, source: str, metric: str = RECEIVED_METRIC
) -> int | None:
    """Count one refused request from this client (in the limit and in `metric`, one round
    trip). Past the limit, the seconds until the window ends (for Retry-After); else None."""
    labels = {"source": source, "kind": "none"} if metric == RECEIVED_METRIC else {}
    labels = {**labels, "source": source}
    refused = metric_field(metric, {**labels, "status": "unauthorized"})
    rule = settings.rate_limit_rule()
    try:
        if rule is None:
            store.redis.hincrby(METRICS_KEY, refused, 1)
            return None
        limited = metric_field(metric, {**labels, "status": "rate_limited"})
        limit, window = rule
        return store.hit_rate_limit(
            f"{source}:{client_address()}", limit, window, (refused, limited)
        )
    except RedisError:
        return None


def blocked(store: Store, settings: Settings, source: str, now: float | None = None) -> int | None:
    """Whether this client already used up its refusals in the current window: the seconds
    until the window ends (for Retry-After), else None. Read only: nothing is counted."""
    rule = settings.rate_limit_rule()
    if rule is None:
        return None
    limit, window = rule
    now = time.time() if now is None else now
    start = int(now // window) * window
    try:
        hits = int(store.redis.get(ratelimit_key(f"{source}:{client_address()}", start)) or 0)
    except RedisError:
        return None
    if hits < limit:
        return None
    return max(1, int(start + window - now + 0.999))


def too_many(what: str, retry_after: int, plain: bool = False) -> tuple[Response, int]:
    """The 429 reply (JSON, or plain text for pages), logged once per refusal."""
    log.warning("%s: too many refused requests from one address, 429", what)
    text = f"too many refused requests from this address; retry after {retry_after} s"
    response = Response(text + "\n", mimetype="text/plain") if plain else jsonify(error=text)
    response.headers["Retry-After"] = str(retry_after)
    return response, 429
