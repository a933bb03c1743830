"""Counters kept in Redis, so that every web and worker process adds to the same totals:
Prometheus counters (encoded as in metrics.py) and the rate limit's fixed windows."""

from __future__ import annotations

import time

from redis import Redis
from redis.exceptions import RedisError

from .keys import METRICS_KEY
from .metrics import metric_field, parse_metric_field
from .scripts import Scripts


class Counters:
    redis: Redis
    _lua: Scripts

    def count(self, name: str, amount: int = 1, **labels: str) -> None:
        """Add to a Prometheus counter; never raises (a metric must not fail a request)."""
        try:
            self.redis.hincrby(METRICS_KEY, metric_field(name, labels), amount)
        except RedisError:
            pass

    def counters(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
        """Every counter as {(name, ((label, value), ...)): count}."""
        return {parse_metric_field(k): int(v) for k, v in self.redis.hgetall(METRICS_KEY).items()}

    def hit_rate_limit(
        self,
        bucket: str,
        limit: int,
        window: int,
        counted_as: tuple[str, str],
        now: float | None = None,
    ) -> int | None:
        """Count one request in `bucket`'s current fixed window, and in the metrics: the
        first of `counted_as` (metric fields) when allowed, else the second. One round trip.

        Returns None when allowed, else the seconds until the window ends (Retry-After).
        """
        now = time.time() if now is None else now
        start = int(now // window) * window
        hits = self._lua.rate(bucket, start, window + 1, limit, counted_as)
        if hits <= limit:
            return None
        return max(1, int(start + window - now + 0.999))
