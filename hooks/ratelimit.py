"""Per-source, per-client limit on refused webhooks: 429 with Retry-After for a flood.

Only requests that fail authentication are counted, in a fixed window in Redis
(`FAREWELL_RATE_LIMIT`, e.g. `300/60`) shared by every web process. Authenticated
deliveries are never limited: a cancellation wave from the site's own server is real,
and the plugins do not retry a 429. When Redis does not answer the limiter allows the
request: a limiter must never be the reason an event is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import request
from redis.exceptions import RedisError

from worker.settings import Settings
from worker.store import Store


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0
    redis_down: bool = False


def client_address() -> str:
    """The peer address (X-Forwarded-For is honoured only via FAREWELL_TRUSTED_PROXIES)."""
    return request.remote_addr or "unknown"


def note_refusal(store: Store, settings: Settings, source: str) -> Verdict:
    """Count one refused request from this client; past the limit, say how long to wait."""
    rule = settings.rate_limit_rule()
    if rule is None:
        return Verdict(True)
    limit, window = rule
    try:
        wait = store.hit_rate_limit(f"{source}:{client_address()}", limit, window)
    except RedisError:
        return Verdict(True, redis_down=True)
    return Verdict(wait is None, wait or 0)
