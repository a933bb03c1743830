"""Running RQ jobs in the test process, as a worker and its scheduler would."""

from __future__ import annotations

from rq import Queue, SimpleWorker


class BurstWorker(SimpleWorker):
    """A SimpleWorker for one burst in the test process, without RQ's command channel.

    `work()` subscribes to the worker's pub/sub channel (for `rq` commands such as
    shutdown) in a thread that waits up to 60 s for a message, and at the end joins that
    thread with a 1 s timeout: about 0.7 s per burst, for commands no test sends. The jobs
    run exactly as under `python -m worker`."""

    def subscribe(self) -> None:
        pass


def run_queued(queue: Queue) -> None:
    """Run every queued job now, like a worker in burst mode (no scheduler)."""
    BurstWorker([queue], connection=queue.connection, serializer=queue.serializer).work(
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
