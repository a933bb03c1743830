"""The templates' safety net in Redis: the last version of each email that rendered, and
the emails that failed at send time (shown on /healthz, /metrics and the admin pages until
a version that renders replaces the broken one). See worker/safety.py."""

from __future__ import annotations

import json
import time

from redis import Redis

from .keys import TEMPLATE_FAILURES_KEY, TEMPLATE_LAST_GOOD_KEY


class Templates:
    redis: Redis

    def last_good_template(self, email: str) -> dict | None:
        """{"digest", "at", "files": {name: source}} of `email` ("en/winback"), or None."""
        raw = self.redis.hget(TEMPLATE_LAST_GOOD_KEY, email)
        return json.loads(raw) if raw else None

    def template_rendered(self, email: str, digest: str, files: dict[str, str]) -> None:
        """`email` rendered from these files: keep them as its last good version, and
        forget a failure recorded for other content (a fixed file or a new save)."""
        entry = {"digest": digest, "at": time.time(), "files": files}
        pipe = self.redis.pipeline()
        pipe.hset(TEMPLATE_LAST_GOOD_KEY, email, json.dumps(entry))
        pipe.hget(TEMPLATE_FAILURES_KEY, email)
        failure = pipe.execute()[1]
        if failure and json.loads(failure).get("digest") != digest:
            self.redis.hdel(TEMPLATE_FAILURES_KEY, email)

    def record_template_failure(self, email: str, entry: dict) -> None:
        self.redis.hset(TEMPLATE_FAILURES_KEY, email, json.dumps(entry))

    def template_failures(self) -> dict[str, dict]:
        """email -> {file, line, error, digest, fallback, at, count}."""
        raw = self.redis.hgetall(TEMPLATE_FAILURES_KEY)
        return {email: json.loads(value) for email, value in sorted(raw.items())}

    def clear_template_failure(self, email: str) -> None:
        self.redis.hdel(TEMPLATE_FAILURES_KEY, email)
