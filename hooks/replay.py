"""Single-use tokens, for signatures that do not cover what they arrive with.

Mailgun signs only `timestamp + token`: the same signature fits any body. Each signed token
is therefore claimed once, in Redis, for longer than the timestamp stays fresh; after that
the timestamp check refuses it anyway. One `SET NX EX`: two copies racing through two web
processes cannot both claim it (a GET, then a SET, could).
"""

from __future__ import annotations

import hashlib

from redis import Redis

from worker.store import PREFIX


def token_key(scope: str, token: str) -> str:
    # Hashed: the token is sender-chosen text of any length; the key stays short.
    return f"{PREFIX}seen-token:{scope}:{hashlib.sha256(token.encode()).hexdigest()}"


def claim_token(redis: Redis, scope: str, token: str, ttl: int) -> bool:
    """True the first time `token` is seen in `scope` (within `ttl` seconds), else False."""
    return bool(redis.set(token_key(scope, token), "1", nx=True, ex=ttl))


def release_token(redis: Redis, scope: str, token: str) -> None:
    """Forget a claim whose request then failed (503): the provider's retry must pass."""
    redis.delete(token_key(scope, token))
