"""Event jobs taken off RQ's queue by a running event job, to be handled in the same job.

RQ spends more worker CPU on each job (dequeue, registries, heartbeats, result) than
Farewell spends on a cancellation. During a wave the queue holds thousands of event jobs
back to back, so an event job takes the ones right behind it and handles them itself.

Taking is one Lua call that moves the job ids at the head of the queue, while they are
event jobs, into `batch:{owner}` (the list of what this worker took); the calls that touch
RQ's queue list are in worker/rq_seam.py (its assumption 4). `settle` deletes the
jobs that were handled and puts the rest back at the front of the queue, also atomically.
A worker that dies in between leaves its list behind; `recover_dead` (the worker's sweep)
puts those jobs back on the queue once the owner's heartbeat is gone, and a live worker
whose settle failed (Redis unreachable) puts them back with its next `take`. Handling an
event twice is safe (jobs are idempotent); losing one is not, hence the list.
"""

from __future__ import annotations

import logging

from redis import Redis
from rq import Queue

from . import rq_seam
from .liveness import is_alive
from .queues import event_job_id
from .store import BATCH_OWNERS_KEY, batch_key

log = logging.getLogger(__name__)

_EVENT_JOB_PREFIX = event_job_id("")


def event_id_of(job_id: str) -> str:
    return job_id.removeprefix(_EVENT_JOB_PREFIX)


def take(queue: Queue, owner: str, count: int) -> list[str]:
    """Move up to `count` event job ids from the head of the queue into the owner's batch
    list. Stops at the first job that is not an event's (a step, a notification). Jobs
    left in the list by an earlier batch whose settle failed are queued again first."""
    return rq_seam.take_queued(
        queue, batch_key(owner), BATCH_OWNERS_KEY, owner, _EVENT_JOB_PREFIX, count
    )


def settle(queue: Queue, owner: str, *, done: list[str], back: list[str]) -> None:
    """Delete the handled jobs (their outcome is in the store, as RQ does with a result_ttl
    of 0) and put `back` at the front of the queue, in one transaction."""
    rq_seam.finish_taken(queue, batch_key(owner), done=done, back=back)


def recover_dead(queue: Queue) -> int:
    """Put the jobs taken by workers without a heartbeat back on the queue."""
    connection: Redis = queue.connection
    returned = 0
    for raw in connection.smembers(BATCH_OWNERS_KEY):
        owner = raw.decode() if isinstance(raw, bytes) else raw
        if is_alive(connection, owner):
            continue
        n = rq_seam.give_back(queue, batch_key(owner), BATCH_OWNERS_KEY, owner)
        if n:
            log.warning("%d event job(s) re-queued: worker %s died while handling them", n, owner)
        returned += n
    return returned
