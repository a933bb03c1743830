"""The one module that leans on RQ's internals. Everything else uses RQ's public API
(`Queue.enqueue_call` / `enqueue_in`, the registries' public methods, `Job.fetch`, `Retry`,
`SimpleWorker.work`) and never names an `rq:` key; tests/test_rq_seam.py greps the tree
for that.

Each use buys speed that `make bench` measures (bench/README.md) or a recovery RQ does too
slowly. Each rests on an assumption about the pinned RQ (requirements.txt), pinned in turn
by a test against that RQ; an RQ upgrade means re-reading this list and running those
tests, not auditing the tree:

1. A job is its hash at `Job.key_for(id)`, fields as `Job.to_dict` writes them, so a hash
   written from a template taken once from a real job (`job_fields`) runs as if RQ wrote
   it. Pinned by tests/test_intake.py::test_the_job_is_written_as_rq_would_enqueue_it.
2. Enqueueing is that hash, the id RPUSHed to the queue's list (`Queue.key`) and the queue
   named in `Queue.redis_queues_keys`: the intake's Lua script writes them with the event
   in one round trip (`job_record`, worker/store/scripts.py ACCEPT). Pinned by the same
   test (the job runs: tests/test_intake.py::test_an_accepted_event_is_handled_by_the_worker).
3. Scheduling is the hash (status `scheduled`, no TTL) plus the id in the scheduled
   registry's sorted set scored by the due Unix time (`write_scheduled`). Pinned by
   tests/test_intake.py::test_a_scheduled_step_is_written_as_rq_would_schedule_it.
4. The queue list holds job ids consumed from the left: an id moved out of it is not run
   by RQ, one pushed back on the left runs next, and a job finished with `result_ttl=0`
   leaves nothing but its deleted hash (`take_queued`, `finish_taken`, `give_back`, used
   by worker/batch.py). Pinned by tests/test_batch.py.
5. A job exists while its hash does (`jobs_exist`, the stale-event sweep). Pinned by
   tests/test_intake.py::test_the_sweeper_requeues_an_accepted_event_whose_job_was_lost.
6. The started registry is a sorted set of `<job id>:<execution id>` members, and
   `Execution.fetch` names the worker running it; removing the member and enqueueing the
   job again (public `Queue.enqueue_job`) is what RQ's own cleanup does later
   (`started_jobs`, `unstart`, used by worker/recovery.py). Pinned by tests/test_operations.py::
   test_a_job_of_a_worker_without_heartbeat_is_requeued_once and tests/test_faults.py::
   test_workers_killed_mid_job_lose_and_duplicate_nothing.
7. `RQScheduler` holds a per-queue lock at `get_locking_key(name)` that a live scheduler
   refreshes every second with a TTL of interval + 60 s, and `acquire_locks`,
   `enqueue_scheduled_jobs`, `release_locks` run one scheduling pass (`scheduler_lock_key`,
   `run_scheduler_once`). Pinned by tests/test_operations.py::
   test_due_jobs_move_when_no_live_scheduler_holds_the_queue.
8. A worker's loop checks the private `_stop_requested` before every dequeue
   (`Worker.stop_before_work`); `max_connection_wait_time` bounds its wait for a lost
   Redis; `perform_job(job, queue, ...)` runs each job in the worker's process (RQ 3 added
   an argument: `Worker` passes any through). Pinned by tests/test_operations.py::
   test_a_stop_that_lands_before_rqs_own_handlers_is_not_lost and
   test_metrics_count_events_jobs_and_emails_across_processes (jobs counted per outcome).
9. A running job whose `retries_left` is set to 0 goes to the failed registry when it
   raises, without a retry (`no_retry`). Pinned by tests/test_stripe_source.py::
   test_a_refused_api_key_fails_at_once_shows_on_healthz_and_retries_once_fixed and
   tests/test_send_failures.py::test_an_smtp_configuration_error_takes_the_same_path.

Two things RQ also has, kept on purpose (not internals, but an upgrade should re-judge them):
our own heartbeat (worker/liveness.py) because RQ's worker key lives for the worker's
whole TTL (DEFAULT_WORKER_TTL, 420 s) and sweeping on it would leave a dead worker's send
claim and job for minutes, where ours expires within ALIVE_TTL; and our own pool
(worker/pool.py) because each process must be a whole `python -m worker` (preflight,
heartbeat, sweep, the loop that outlives a Redis outage), which `rq worker-pool` does not
start. Neither touches RQ's keys.

Pinned version: rq 3.0.0 (see "RQ version" in docs/operations.md).
"""

from __future__ import annotations

import calendar
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from redis import Redis
from redis.commands.core import Script
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job, JobStatus, get_current_job
from rq.utils import as_text, get_call_string, now, parse_composite_key, utcformat

from .store import JobRecord

# --- 1, 2, 3: job hashes written without RQ's Job object ---------------------------------


def job_key(job_id: str) -> str:
    """The Redis key of a job's hash."""
    return Job.key_for(job_id)


def job_record(
    queue: Queue, job_id: str, func: str, args: tuple[str, ...], options: dict[str, Any]
) -> JobRecord:
    """A queued job as RQ's enqueue would write it: its hash, the queue's list and the set
    of queues, for a Lua script to write atomically with something of ours."""
    return JobRecord(
        id=job_id,
        key=job_key(job_id),
        queue_key=queue.key,
        queues_key=queue.redis_queues_keys,
        fields=job_fields(queue, func, args, JobStatus.QUEUED, options),
    )


def job_fields(
    queue: Queue, func: str, args: tuple[str, ...], status: JobStatus, options: dict[str, Any]
) -> tuple[str | bytes, ...]:
    """A job's hash fields (flat name, value, ...) exactly as RQ's Job.to_dict writes them.

    Built once per (queue, function, status) from a real RQ job; per job only the fields
    that carry the arguments or the time are made again, the way RQ makes them: RQ's own
    job creation was a large part of a webhook's and of a cancellation's CPU. `options`
    must be the same on every call for one (queue, function, status), bar their `args`;
    the job id is not part of the hash.
    """
    key = (queue.name, func, status)
    template = _JOB_TEMPLATES.get(key)
    if template is None:
        job = queue.create_job(func, status=status, **{**options, "args": ("-",) * len(args)})
        job.origin = queue.name
        if status is JobStatus.QUEUED:
            job.enqueued_at = now()
        template = _JOB_TEMPLATES[key] = tuple(
            (name, value if isinstance(value, bytes | str) else str(value))
            for name, value in job.to_dict().items()
            if value is not None
        )
    stamp = utcformat(now())
    varying = {
        "created_at": stamp,
        "enqueued_at": stamp if status is JobStatus.QUEUED else "",
        "data": zlib.compress(queue.serializer.dumps((func, None, args, {}))),
        "description": get_call_string(func, args, {}, max_length=75) or "",
    }
    fields: list[str | bytes] = []
    for name, value in template:
        fields += [name, varying.get(name, value)]
    return tuple(fields)


_JOB_TEMPLATES: dict[tuple[str, str, JobStatus], tuple[tuple[str, str | bytes], ...]] = {}


def write_scheduled(
    queue: Queue,
    job_id: str,
    func: str,
    args: tuple[str, ...],
    options: dict[str, Any],
    at: datetime,
) -> None:
    """What RQ's enqueue_at writes (job hash, scheduled registry, queues set), in one
    round trip instead of two and without building an RQ Job."""
    fields = job_fields(queue, func, args, JobStatus.SCHEDULED, options)
    pipe = queue.connection.pipeline(transaction=False)
    pipe.sadd(queue.redis_queues_keys, queue.key)
    pipe.hset(job_key(job_id), items=list(fields))
    pipe.persist(job_key(job_id))
    pipe.zadd(queue.scheduled_job_registry.key, {job_id: calendar.timegm(at.utctimetuple())})
    pipe.execute()


# --- 4: ids taken off the queue's list -----------------------------------------------------

# KEYS: queue list, taken list, owners set; ARGV: how many, job id prefix, owner.
# Whatever is still in the taken list (a finish that never reached Redis) goes back to the
# front of the queue first: the owner takes one batch at a time, so none of it is live.
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

# KEYS: taken list, queue list, owners set; ARGV: owner.
# Everything in the taken list goes back to the front of the queue, in its order.
_GIVE_BACK_SCRIPT = """
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do n = n + 1 end
redis.call('SREM', KEYS[3], ARGV[1])
return n
"""


@lru_cache(maxsize=16)
def _script(connection: Redis, source: str) -> Script:
    return connection.register_script(source)


def take_queued(
    queue: Queue, taken_key: str, owners_key: str, owner: str, prefix: str, count: int
) -> list[str]:
    """Move up to `count` job ids from the head of the queue into the list `taken_key`
    while they start with `prefix`, noting `owner` in `owners_key`; ids a previous take
    left there go back to the queue's front first."""
    taken = _script(queue.connection, _TAKE_SCRIPT)(
        keys=[queue.key, taken_key, owners_key], args=[count, prefix, owner]
    )
    return [as_text(t) for t in taken]


def finish_taken(queue: Queue, taken_key: str, *, done: list[str], back: list[str]) -> None:
    """Delete the jobs in `done` (as RQ does with a result_ttl of 0), put `back` at the
    front of the queue in order, and empty `taken_key`, in one transaction."""
    pipe = queue.connection.pipeline(transaction=True)
    for job_id in done:
        pipe.delete(job_key(job_id))
    if back:
        pipe.lpush(queue.key, *reversed(back))
    pipe.delete(taken_key)
    pipe.execute()


def give_back(queue: Queue, taken_key: str, owners_key: str, owner: str) -> int:
    """Put every id in `taken_key` back at the front of the queue; how many there were."""
    script = _script(queue.connection, _GIVE_BACK_SCRIPT)
    return int(script(keys=[taken_key, queue.key, owners_key], args=[owner]))


# --- 5: does a job exist ---------------------------------------------------------------------


def jobs_exist(connection: Redis, job_ids: Iterable[str]) -> list[bool]:
    """One pipelined EXISTS per job, instead of fetching and decoding each."""
    pipe = connection.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.exists(job_key(job_id))
    return [bool(n) for n in pipe.execute()]


# --- 6: the started registry -----------------------------------------------------------------


class Started(NamedTuple):
    entry: str  # the registry member, to remove it with `unstart`
    job_id: str
    worker_name: str


def started_jobs(queue: Queue) -> list[Started]:
    """The jobs RQ believes are running, with the worker running each."""
    connection = queue.connection
    found: list[Started] = []
    for raw in connection.zrange(queue.started_job_registry.key, 0, -1):
        entry = as_text(raw)
        job_id, execution_id = parse_composite_key(entry)
        try:
            execution = Execution.fetch(execution_id, job_id, connection=connection)
        except ValueError:
            continue  # finished meanwhile, or RQ's own cleanup got it
        found.append(Started(entry, job_id, execution.worker_name))
    return found


def unstart(queue: Queue, started: Started) -> bool:
    """Remove a job from the started registry; False if someone else already did (several
    sweepers may run at once: the removal is the claim)."""
    return bool(queue.connection.zrem(queue.started_job_registry.key, started.entry))


# --- 7: the scheduler's lock and one scheduling pass -----------------------------------------


def scheduler_lock_key(queue_name: str) -> str:
    """Present while a scheduler holds the queue (refreshed every second)."""
    from rq.scheduler import RQScheduler

    return RQScheduler.get_locking_key(queue_name)


def run_scheduler_once(queue: Queue) -> bool:
    """Move the queue's due scheduled jobs to it, if its lock can be had; True if it ran."""
    from rq.scheduler import RQScheduler

    scheduler = RQScheduler([queue], connection=queue.connection, serializer=queue.serializer)
    if not scheduler.acquire_locks():
        return False
    try:
        scheduler.enqueue_scheduled_jobs()
    finally:
        scheduler.release_locks()
    return True


# --- 8, 9: the worker's loop and the running job ---------------------------------------------


class Worker(SimpleWorker):
    """RQ's SimpleWorker with a hook around each job run in it (`around_job`) and a stop
    usable before RQ's own signal handlers are installed (`stop_before_work`)."""

    max_connection_wait_time = 5.0  # retry a lost Redis every 5 s, not every minute

    def around_job(self, job: Job, run: Callable[[], bool]) -> bool:
        """Run the job (`run()`, True when it succeeded); subclasses add around it."""
        return run()

    def perform_job(self, job: Job, queue: Queue, *rest: Any) -> bool:
        # RQ 3 passes the job's Execution as well; RQ 2 does not.
        return self.around_job(job, lambda: super(Worker, self).perform_job(job, queue, *rest))

    def stop_before_work(self) -> None:
        """Make the loop end before its next dequeue (a warm stop, as RQ's own signal
        handler would ask for)."""
        self._stop_requested = True


def no_retry() -> None:
    """The running job, if it raises, goes straight to the failed registry: no retry can
    fix what it hit (our own configuration)."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0
