"""Running RQ jobs in the test process, as a worker and its scheduler would."""

from __future__ import annotations

from rq import Queue, SimpleWorker


def run_queued(queue: Queue) -> None:
    """Run every queued job now, like a worker in burst mode (no scheduler)."""
    SimpleWorker([queue], connection=queue.connection, serializer=queue.serializer).work(
        burst=True, with_scheduler=False
    )


def release_due(queue: Queue, until: float) -> list[str]:
    """Move every job scheduled up to `until` (a timestamp) onto the queue, as RQ's
    scheduler does when their time comes. Returns their ids."""
    registry = queue.scheduled_job_registry
    ids = list(registry.get_jobs_to_schedule(int(until), chunk_size=10_000))
    for job in queue.job_class.fetch_many(
        ids, connection=queue.connection, serializer=queue.serializer
    ):
        if job is not None:
            registry.remove(job)
            queue.enqueue_job(job)
    return ids
