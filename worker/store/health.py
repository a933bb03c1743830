"""What /healthz reports beyond Redis itself: the last configuration errors of the mail
transport and of Stripe (each kept until things work again), and the RQ scheduler's lock."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from redis import Redis

from .keys import LAST_SEND_ERROR_KEY, STRIPE_ERROR_KEY, scheduler_lock_key


class Health:
    redis: Redis

    def record_send_error(self, entry: Mapping[str, str]) -> None:
        """Remember a configuration error (bad key, unverified sender) until mail works."""
        self.redis.set(LAST_SEND_ERROR_KEY, json.dumps(dict(entry)))

    def last_send_error(self) -> dict[str, str] | None:
        raw = self.redis.get(LAST_SEND_ERROR_KEY)
        return json.loads(raw) if raw else None

    def clear_send_error(self) -> None:
        self.redis.delete(LAST_SEND_ERROR_KEY)

    def record_stripe_error(self, error: str, event_id: str) -> None:
        """Stripe refused our API key: shown on /healthz until a lookup works again."""
        entry = {"error": error, "at": time.time(), "event": event_id}
        self.redis.set(STRIPE_ERROR_KEY, json.dumps(entry))

    def stripe_error(self) -> dict[str, object] | None:
        raw = self.redis.get(STRIPE_ERROR_KEY)
        return json.loads(raw) if raw else None

    def clear_stripe_error(self) -> None:
        self.redis.delete(STRIPE_ERROR_KEY)

    def scheduler_alive(self, queue_name: str) -> bool:
        return bool(self.redis.exists(scheduler_lock_key(queue_name)))
