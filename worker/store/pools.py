"""Incentive pools: single-use codes loaded from a file, one per member."""

from __future__ import annotations

from redis import Redis

from .keys import pool_key
from .scripts import Scripts


class Pools:
    redis: Redis
    _lua: Scripts

    def pool_signature(self, name: str) -> str | None:
        """The sha256 of the pool file last loaded."""
        return self.redis.get(pool_key(name, "loaded"))

    def load_pool(self, name: str, codes: list[str], signature: str) -> int:
        """Add the file's codes that were never seen before (a code given out or removed
        is never loaded again), and remember the file's signature. Returns how many were new."""
        added = 0
        for start in range(0, len(codes), 1000):
            added += self._lua.pool_load(name, codes[start : start + 1000])
        self.redis.set(pool_key(name, "loaded"), signature)
        return added

    def claim_pool_code(self, name: str, key: str) -> str | None:
        """The member's code from the pool (the same one on every call); None if empty."""
        return self._lua.pool_claim(name, key)

    def pool_remaining(self, name: str) -> int:
        return int(self.redis.llen(pool_key(name, "available")))
