"""Per-source, per-client rate limit for webhooks: 429 with Retry-After instead of falling over.

A fixed window counted in Redis (`FAREWELL_RATE_LIMIT`, e.g. `3000/60`), so every web
process shares the same count. It fails open: when Redis does not answer, the request
goes on to the receiver, whose spool keeps the event — a limiter must never be the reason
an event is lost.
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


def check(store: Store, settings: Settings, source: str) -> Verdict:
    rule = settings.rate_limit_rule()
    if rule is None:
        return Verdict(True)
    limit, window = rule
    try:
        wait = store.hit_rate_limit(f"{source}:{client_address()}", limit, window)
    except RedisError:
        return Verdict(True, redis_down=True)
    return Verdict(wait is None, wait or 0)
