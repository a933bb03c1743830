"""Email templates in Redis: the versions saved in the admin editor and which one is
published (worker/versions.py), and the safety net (worker/safety.py): the last version of
each email that rendered, and the emails that failed at send time (shown on /healthz,
/metrics and the admin pages until a version that renders replaces the broken one)."""

from __future__ import annotations

import json
import time

from redis import Redis
from redis.exceptions import WatchError

from .keys import (
    TEMPLATE_FAILURES_KEY,
    TEMPLATE_LAST_GOOD_KEY,
    TEMPLATE_PUBLISHED_KEY,
    template_draft_key,
    template_versions_key,
)


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

    # --- versions saved in the editor (worker/versions.py) ---------------------------------

    def template_versions(self, email: str) -> list[dict]:
        """Every saved version of `email`, oldest first: {n, at, note, html, text}."""
        return [json.loads(v) for v in self.redis.lrange(template_versions_key(email), 0, -1)]

    def template_version(self, email: str, n: int) -> dict | None:
        if n < 1:
            return None
        raw = self.redis.lindex(template_versions_key(email), n - 1)
        return json.loads(raw) if raw else None

    def add_template_version(self, email: str, entry: dict, *, publish: bool) -> int:
        """Append a version (numbered from 1) and, with `publish`, make it the one sent."""
        key = template_versions_key(email)
        # Numbers are list positions: append and publish under a lock-free WATCH.
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    n = pipe.llen(key) + 1
                    pipe.multi()
                    pipe.rpush(key, json.dumps({**entry, "n": n}))
                    if publish:
                        pipe.hset(TEMPLATE_PUBLISHED_KEY, email, n)
                    pipe.execute()
                    return n
                except WatchError:
                    continue

    def publish_template_version(self, email: str, n: int) -> None:
        self.redis.hset(TEMPLATE_PUBLISHED_KEY, email, n)

    def unpublish_template(self, email: str) -> None:
        """Send the file again (the versions stay in the history)."""
        self.redis.hdel(TEMPLATE_PUBLISHED_KEY, email)

    def published_templates(self) -> dict[str, int]:
        """email -> the version number sent."""
        return {e: int(n) for e, n in self.redis.hgetall(TEMPLATE_PUBLISHED_KEY).items()}

    def published_sources(self) -> dict[str, dict]:
        """email -> its published version: what the worker sends. One round trip for the
        map, one for the versions."""
        published = self.published_templates()
        if not published:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for email, n in published.items():
            pipe.lindex(template_versions_key(email), n - 1)
        return {
            email: json.loads(raw)
            for email, raw in zip(published, pipe.execute(), strict=True)
            if raw
        }

    def save_template_draft(self, token: str, entry: dict, ttl: int) -> None:
        self.redis.set(template_draft_key(token), json.dumps(entry), ex=ttl)

    def template_draft(self, token: str) -> dict | None:
        raw = self.redis.get(template_draft_key(token))
        return json.loads(raw) if raw else None
