"""Event jobs taken off RQ's queue by a running event job, to be handled in the same job.

RQ spends more worker CPU on each job (dequeue, registries, heartbeats, result) than
Farewell spends on a cancellation. During a wave the queue holds thousands of event jobs
back to back, so an event job takes the ones right behind it and handles them itself.

Taking is one Lua call that moves the job ids at the head of the queue, while they are
event jobs, into `batch:{owner}` (the list of what this worker took). `settle` deletes the
jobs that were handled and puts the rest back at the front of the queue, also atomically.
A worker that dies in between leaves its list behind; `recover_dead` (the worker's sweep)
puts those jobs back on the queue once the owner's heartbeat is gone, and a live worker
whose settle failed (Redis unreachable) puts them back with its next `take`. Handling an
event twice is safe (jobs are idempotent); losing one is not, hence the list.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from redis import Redis
from redis.commands.core import Script
from rq import Queue

from .liveness import is_alive
from .queues import event_job_id
from .store import BATCH_OWNERS_KEY, batch_key

log = logging.getLogger(__name__)

_EVENT_JOB_PREFIX = event_job_id("")

# KEYS: queue list, batch list, batch owners set; ARGV: how many, job id prefix, owner.
# Whatever is still in this owner's list (a settle that never reached Redis) goes back to
# the front of the queue first: the owner runs one batch at a time, so none of it is live.
_TAKE_SCRIPT = """
while redis.call('LMOVE', KEYS[2], KEYS[1], 'RIGHT', 'LEFT') do end
local taken = {}
for _ = 1, tonumber(ARGV[1]) do
    local head = redis.call('LINDEX', KEYS[1], 0)
    if not head or string.sub(head, 1, #ARGV[2]) ~= ARGV[2] then break end
    redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
    taken[#taken + 1] = head
end
if #taken > 0 then redis.call('SADD', KEYS[3], ARGV[3]) end
return taken
"""

# KEYS: batch list, queue list, batch owners set; ARGV: owner.
# Everything in the batch list goes back to the front of the queue, in its order.
_GIVE_BACK_SCRIPT = """
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do n = n + 1 end
redis.call('SREM', KEYS[3], ARGV[1])
return n
"""


@lru_cache(maxsize=16)
def _script(connection: Redis, source: str) -> Script:
    return connection.register_script(source)


def event_id_of(job_id: str) -> str:
    return job_id.removeprefix(_EVENT_JOB_PREFIX)


def take(queue: Queue, owner: str, count: int) -> list[str]:
    """Move up to `count` event job ids from the head of the queue into the owner's batch
    list. Stops at the first job that is not an event's (a step, a notification). Jobs
    left in the list by an earlier batch whose settle failed are queued again first."""
    keys = [queue.key, batch_key(owner), BATCH_OWNERS_KEY]
    taken = _script(queue.connection, _TAKE_SCRIPT)(
        keys=keys, args=[count, _EVENT_JOB_PREFIX, owner]
    )
    return [t.decode() if isinstance(t, bytes) else t for t in taken]


def settle(queue: Queue, owner: str, *, done: list[str], back: list[str]) -> None:
    """Delete the handled jobs (their outcome is in the store, as RQ does with a result_ttl
    of 0) and put `back` at the front of the queue, in one transaction."""
    pipe = queue.connection.pipeline(transaction=True)
    for job_id in done:
        pipe.delete(queue.job_class.key_for(job_id))
    if back:
        pipe.lpush(queue.key, *reversed(back))
    pipe.delete(batch_key(owner))
    pipe.execute()


def recover_dead(queue: Queue) -> int:
    """Put the jobs taken by workers without a heartbeat back on the queue."""
    connection: Redis = queue.connection
    script = _script(connection, _GIVE_BACK_SCRIPT)
    returned = 0
    for raw in connection.smembers(BATCH_OWNERS_KEY):
        owner = raw.decode() if isinstance(raw, bytes) else raw
        if is_alive(connection, owner):
            continue
        n = int(script(keys=[batch_key(owner), queue.key, BATCH_OWNERS_KEY], args=[owner]))
        if n:
            log.warning("%d event job(s) re-queued: worker %s died while handling them", n, owner)
        returned += n
    return returned
