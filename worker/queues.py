"""RQ plumbing shared by the web side (enqueue) and the worker (consume).

RQ gets its own Redis client: it stores bytes and needs `decode_responses=False`, while
`worker.store` works with text.
"""

from __future__ import annotations

from datetime import timedelta

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job
from rq.serializers import JSONSerializer

# Transient failures (SMTP 4xx, timeouts, provider 5xx) retry with growing pauses.
SEND_RETRY = Retry(max=8, interval=[10, 30, 60, 300, 900, 1800, 3600, 3600])
EVENT_RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])
JOB_TIMEOUT = 60


def rq_connection(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=5.0)


def make_queue(connection: Redis, name: str) -> Queue:
    return Queue(
        name, connection=connection, serializer=JSONSerializer, default_timeout=JOB_TIMEOUT
    )


def event_job_id(event_id: str) -> str:
    return f"event-{event_id}"


def step_job_id(sequence_id: str, step: str) -> str:
    return f"step-{sequence_id}-{step}"


def enqueue_event(queue: Queue, event_id: str) -> Job:
    return queue.enqueue_call(
        "worker.jobs.handle_event",
        args=(event_id,),
        job_id=event_job_id(event_id),
        retry=EVENT_RETRY,
        result_ttl=3600,
        failure_ttl=30 * 24 * 3600,
    )


def schedule_step(queue: Queue, sequence_id: str, step: str, delay: timedelta) -> bool:
    """Schedule one step under a deterministic id; False if it was planned already."""
    job_id = step_job_id(sequence_id, step)
    options = {
        "job_id": job_id,
        "retry": SEND_RETRY,
        "result_ttl": 7 * 24 * 3600,
        "failure_ttl": 30 * 24 * 3600,
        "unique": True,
    }
    try:
        if delay > timedelta(0):
            queue.enqueue_in(delay, "worker.jobs.send_step", sequence_id, step, **options)
        else:
            queue.enqueue_call("worker.jobs.send_step", args=(sequence_id, step), **options)
    except DuplicateJobError:
        return False
    return True
