"""Is this Redis safe to keep Farewell's data in?

Members, sequences, survey answers and the insights' records have no TTL and live only in
Redis; RQ's jobs too. A Redis that evicts keys when it fills up (`maxmemory-policy`
`allkeys-*`) would drop them without a word, and a `volatile-*` one drops keys that have a
TTL: send claims (a lost claim can send a step twice), dedupe markers, RQ's job data. A
Redis without persistence loses everything on a restart.

`assess` is pure; `read_config` and `check` do the I/O. Managed services sometimes refuse
`CONFIG GET`: then we say what could not be checked and what to verify by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from redis import Redis
from redis.exceptions import RedisError, ResponseError

from .settings import SettingsError

log = logging.getLogger(__name__)

SETTINGS = ("maxmemory-policy", "appendonly", "save")
OVERRIDE = "FAREWELL_ALLOW_EVICTING_REDIS=1"


@dataclass(frozen=True)
class RedisPolicy:
    """What the check found: `refusal` stops a start; `warnings` are said out loud."""

    config: Mapping[str, str] | None  # None: the server refused CONFIG GET
    refusal: str = ""
    warnings: list[str] = field(default_factory=list)


def assess(config: Mapping[str, str] | None, allow_evicting: bool = False) -> RedisPolicy:
    """Judge the server's settings (as CONFIG GET answers them)."""
    if config is None:
        return RedisPolicy(
            None,
            warnings=[
                "could not read the Redis configuration (CONFIG GET refused): make sure "
                "maxmemory-policy is noeviction and persistence (AOF or RDB) is on"
            ],
        )
    warnings = []
    refusal = ""
    policy = config.get("maxmemory-policy", "noeviction")
    if policy.startswith("allkeys-"):
        message = (
            f"Redis maxmemory-policy is {policy}: when it fills up it deletes any key, "
            "members, survey answers and queued jobs included; set it to noeviction"
        )
        if allow_evicting:
            warnings.append(f"{message} (allowed by {OVERRIDE.split('=')[0]})")
        else:
            refusal = f"{message}, or accept the loss with {OVERRIDE}"
    elif policy.startswith("volatile-"):
        warnings.append(
            f"Redis maxmemory-policy is {policy}: when it fills up it deletes keys that have "
            "a TTL (send claims, dedupe markers, job data): a step may be sent twice; set "
            "it to noeviction"
        )
    if config.get("appendonly", "no") != "yes" and not config.get("save", "").strip():
        warnings.append(
            "Redis has no persistence (appendonly no, save empty): a restart loses every "
            "member, answer and queued email; turn on appendonly yes"
        )
    return RedisPolicy(dict(config), refusal, warnings)


def read_config(redis: Redis) -> dict[str, str] | None:
    """The settings `assess` needs, or None when the server refuses CONFIG (managed
    services, ACLs). Redis 6 answers one parameter per CONFIG GET: one pipeline."""
    pipe = redis.pipeline(transaction=False)
    for name in SETTINGS:
        pipe.config_get(name)
    try:
        replies = pipe.execute()
    except ResponseError:
        return None
    config: dict[str, str] = {}
    for reply in replies:
        config.update({_text(k): _text(v) for k, v in reply.items()})
    return config


def check(redis: Redis, allow_evicting: bool = False) -> RedisPolicy:
    """Read and judge; connection errors propagate (the caller knows whether to wait)."""
    return assess(read_config(redis), allow_evicting)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class EvictingRedis(SettingsError):
    """The Redis would drop Farewell's data when full; the message says what to set."""


def check_at_start(redis: Redis, allow_evicting: bool = False) -> RedisPolicy | None:
    """Run by the web and worker processes as they start: raises EvictingRedis on an
    `allkeys-*` policy (unless allowed), logs every warning. A Redis that does not answer
    yet is not judged (None): /healthz checks again once it does."""
    try:
        result = check(redis, allow_evicting)
    except RedisError as exc:
        log.warning(
            "could not check the Redis settings at start (%s); /healthz shows them",
            type(exc).__name__,
        )
        return None
    if result.refusal:
        raise EvictingRedis(result.refusal)
    for warning in result.warnings:
        log.warning("%s", warning)
    return result
