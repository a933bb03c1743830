"""Taking over the work of a worker process that died mid-job.

RQ notices an abandoned job only when its execution entry expires (job timeout + 60 s)
and a worker's maintenance pass runs (every few minutes). Our workers have a heartbeat
(worker/liveness.py), so a sweep can tell within ALIVE_TTL seconds that the process
running a job is gone, and put the job back on its queue. The job is idempotent, and its
send claim tells whether the step was already past the point of no return.
"""

from __future__ import annotations

import logging

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.job import Job
from rq.utils import as_text, parse_composite_key

from .liveness import is_alive

log = logging.getLogger(__name__)


def reclaim_abandoned(queue: Queue) -> list[str]:
    """Re-queue every job whose execution belongs to a worker without a heartbeat.

    Several sweepers may run at once: removing the registry entry is the claim, so only
    the one whose ZREM succeeds re-queues the job.
    """
    registry = queue.started_job_registry
    connection = queue.connection
    requeued: list[str] = []
    for entry in connection.zrange(registry.key, 0, -1):
        composite = as_text(entry)
        job_id, execution_id = parse_composite_key(composite)
        try:
            execution = Execution.fetch(execution_id, job_id, connection=connection)
        except ValueError:
            continue  # finished meanwhile, or RQ's own cleanup got it
        worker_name = execution.worker_name
        if not worker_name.startswith("farewell-") or is_alive(connection, worker_name):
            continue  # not one of ours (no heartbeat to judge by), or still running
        if not connection.zrem(registry.key, composite):
            continue  # another sweeper took it
        try:
            job = Job.fetch(job_id, connection=connection, serializer=queue.serializer)
        except NoSuchJobError:
            continue  # expired meanwhile: nothing left to run
        queue.enqueue_job(job)
        log.warning("job %s re-queued: worker %s died while running it", job_id, worker_name)
        requeued.append(job_id)
    return requeued
