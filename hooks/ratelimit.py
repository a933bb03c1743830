"""Per-source, per-client limit on refused webhooks: 429 with Retry-After for a flood.

Only requests that fail authentication are counted, in a fixed window in Redis
(`FAREWELL_RATE_LIMIT`, e.g. `300/60`) shared by every web process. Authenticated
deliveries are never limited: a cancellation wave from the site's own server is real,
and the plugins do not retry a 429. When Redis does not answer the limiter allows the
request: a limiter must never be the reason an event is lost.
"""

from __future__ import annotations

from flask import request
from redis.exceptions import RedisError

from worker.settings import Settings
from worker.store import METRICS_KEY, RECEIVED_METRIC, Store, metric_field


def client_address() -> str:
    """The peer address (X-Forwarded-For is honoured only via FAREWELL_TRUSTED_PROXIES)."""
    return request.remote_addr or "unknown"


def note_refusal(store: Store, settings: Settings, source: str) -> int | None:
    """Count one refused request from this client (in the limit and in the received-webhooks
    metric, one round trip). Past the limit, the seconds until the window ends (for
    Retry-After); else None."""
    labels = {"source": source, "kind": "none"}
    refused = metric_field(RECEIVED_METRIC, {**labels, "status": "unauthorized"})
    rule = settings.rate_limit_rule()
    try:
        if rule is None:
            store.redis.hincrby(METRICS_KEY, refused, 1)
            return None
        limited = metric_field(RECEIVED_METRIC, {**labels, "status": "rate_limited"})
        limit, window = rule
        return store.hit_rate_limit(
            f"{source}:{client_address()}", limit, window, (refused, limited)
        )
    except RedisError:
        return None
