"""Taking over the work of a worker process that died mid-job.

RQ notices an abandoned job only when its execution entry expires (job timeout + 60 s)
and a worker's maintenance pass runs (every few minutes). Our workers have a heartbeat
(worker/liveness.py), so a sweep can tell within ALIVE_TTL seconds that the process
running a job is gone, and put the job back on its queue. The job is idempotent, and its
send claim tells whether the step was already past the point of no return. What this
reads of RQ's registries and scheduler is in worker/rq_seam.py (assumptions 6 and 7).
"""

from __future__ import annotations

import logging

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from . import rq_seam
from .liveness import is_alive

log = logging.getLogger(__name__)


def reclaim_abandoned(queue: Queue) -> list[str]:
    """Re-queue every job whose execution belongs to a worker without a heartbeat.

    Several sweepers may run at once: removing the registry entry is the claim, so only
    the one whose ZREM succeeds re-queues the job.
    """
    connection = queue.connection
    requeued: list[str] = []
    for started in rq_seam.started_jobs(queue):
        job_id, worker_name = started.job_id, started.worker_name
        if not worker_name.startswith("farewell-") or is_alive(connection, worker_name):
            continue  # not one of ours (no heartbeat to judge by), or still running
        if not rq_seam.unstart(queue, started):
            continue  # another sweeper took it
        try:
            job = Job.fetch(job_id, connection=connection, serializer=queue.serializer)
        except NoSuchJobError:
            continue  # expired meanwhile: nothing left to run
        queue.enqueue_job(job)
        log.warning("job %s re-queued: worker %s died while running it", job_id, worker_name)
        requeued.append(job_id)
    return requeued


# A live scheduler refreshes its lock (TTL: interval + 60 = 61 s) every second; a lock left
# to run down this far belongs to a scheduler that died with its worker.
STALE_SCHEDULER_LOCK_TTL = 50


def release_due_jobs(queue: Queue) -> bool:
    """Move due scheduled jobs (delayed steps, retries) to the queue when no live scheduler
    holds it. RQ would wait for the dead scheduler's lock to expire and a worker's next
    maintenance pass (a minute or more); a retry of a step whose claim was held by a
    killed worker would wait that long. Returns True when this sweep did the scheduling.
    """
    connection = queue.connection
    key = rq_seam.scheduler_lock_key(queue.name)
    ttl = connection.ttl(key)
    if ttl > STALE_SCHEDULER_LOCK_TTL:
        return False  # a live scheduler has it
    if ttl >= 0:
        log.warning("scheduler lock of %s went stale: its scheduler died; taking over", queue.name)
        connection.delete(key)
    return rq_seam.run_scheduler_once(queue)
