"""Which worker processes are alive, so work held by a dead one can be taken over.

Each `python -m worker` process has an owner id (its RQ worker name) and refreshes
`alive:{owner}` every ALIVE_TTL / 3 seconds. A send claim or an RQ job execution whose
owner has no heartbeat belongs to a process that died (SIGKILL, power loss, OOM).
Processes without a heartbeat (tests, operator commands) leave `owner` unset, and their
claims are never taken over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from redis import Redis
from redis.exceptions import RedisError

from .store import ALIVE_TTL, alive_key

log = logging.getLogger(__name__)
_owner: str | None = None
# Set once this process was asked to stop (SIGTERM, Ctrl-C): the job running then ends its
# batch early, and nothing signals the process again.
stopping = threading.Event()


def new_owner_id() -> str:
    host = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in socket.gethostname())
    return f"farewell-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def owner() -> str | None:
    """This process's owner id while its heartbeat runs, else None."""
    return _owner


def set_owner(value: str | None) -> None:
    global _owner
    _owner = value


def beat(redis: Redis, owner_id: str) -> None:
    redis.set(alive_key(owner_id), "1", ex=ALIVE_TTL)


def is_alive(redis: Redis, owner_id: str) -> bool:
    return bool(redis.exists(alive_key(owner_id)))


def run_heartbeat(redis: Redis, stop: threading.Event) -> None:
    """Refresh this process's heartbeat until `stop` is set (a daemon thread's body)."""
    while not stop.is_set():
        current = _owner
        if current:
            try:
                beat(redis, current)
            except RedisError:
                pass  # Redis is down; nobody can take our work over meanwhile either
        stop.wait(ALIVE_TTL / 3)


def forget(redis: Redis, owner_id: str) -> None:
    """On a clean exit: nothing of ours is in flight any more."""
    try:
        redis.delete(alive_key(owner_id))
    except RedisError:
        log.debug("could not clear heartbeat of %s", owner_id)
