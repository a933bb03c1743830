"""RQ plumbing shared by the web side (enqueue) and the worker (consume).

RQ gets its own Redis client: it stores bytes and needs `decode_responses=False`, while
`worker.store` works with text.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from . import rq_seam
from .store import JobRecord

# Unexpected errors in a send job (rendering, bugs) retry with growing pauses.
SEND_RETRY = Retry(max=8, interval=[10, 30, 60, 300, 900, 1800, 3600, 3600])
# Transient delivery failures (SMTP 4xx, timeouts, HTTP 429/5xx) are retried by send_step
# itself returning an RQ `Retry` whose one interval is computed for this attempt:
# exponential backoff with jitter, never sooner than the provider's Retry-After. RQ counts
# the attempts (`job.number_of_retries`) and moves the job to the failed registry after
# SEND_TRANSIENT_MAX of them (~2 h of trying), where `jobs retry-failed` can requeue it.
SEND_TRANSIENT_MAX = 8
EARLIER_ATTEMPTS = "earlier_attempts"  # step job meta: see send_retry
SEND_BACKOFF_BASE = 30.0  # seconds before the first retry (before jitter)
SEND_BACKOFF_CAP = 3600.0
EVENT_RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])
JOB_TIMEOUT = 60
HANDLE_EVENT = "worker.jobs.handle_event"
SEND_STEP = "worker.jobs.send_step"
STEP_RESULT_TTL = 7 * 24 * 3600
# A handled event's job is deleted at once: its outcome is in the store (member, sequence,
# send claims), and RQ's result stream per job was ~70% of Redis memory per cancellation.
# Failed jobs stay 30 days (failure_ttl), for an operator to retry.
EVENT_RESULT_TTL = 0


def send_retry_delay(
    attempt: int, retry_after: float | None = None, rand: Callable[[], float] = random.random
) -> int:
    """Seconds before retry number `attempt + 1`: half the exponential step fixed, half
    random (so many failed sends do not come back at once), at least `retry_after`."""
    step = min(SEND_BACKOFF_CAP, SEND_BACKOFF_BASE * 2 ** max(attempt, 0))
    delay = step / 2 + rand() * step / 2
    if retry_after:
        delay = max(delay, retry_after)
    return max(1, math.ceil(delay))


def send_retry(attempt: int, retry_after: float | None = None, earlier: int = 0) -> Retry:
    """RQ's next retry of a step job. `earlier`: attempts made before the job existed (the
    one inside the event's job), which count towards SEND_TRANSIENT_MAX too."""
    return Retry(
        max=max(1, SEND_TRANSIENT_MAX - earlier), interval=send_retry_delay(attempt, retry_after)
    )


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


def _event_job_options(event_id: str) -> dict[str, Any]:
    return {
        "args": (event_id,),
        "job_id": event_job_id(event_id),
        "retry": EVENT_RETRY,
        "result_ttl": EVENT_RESULT_TTL,
        "failure_ttl": 30 * 24 * 3600,
    }


def enqueue_event(queue: Queue, event_id: str) -> Job:
    return queue.enqueue_call(HANDLE_EVENT, **_event_job_options(event_id))


def event_job_record(queue: Queue, event_id: str) -> JobRecord:
    """The handle_event job as RQ's enqueue would write it, for the intake's Lua call to
    write atomically with the event."""
    return rq_seam.job_record(
        queue, event_job_id(event_id), HANDLE_EVENT, (event_id,), _event_job_options("-")
    )


def schedule_step(
    queue: Queue, sequence_id: str, step: str, delay: timedelta, *, earlier_attempts: int = 0
) -> bool:
    """Schedule one step under a deterministic id; False if it was queued already (a
    scheduled one is written again, identical: same id, same due time).
    `earlier_attempts`: transient failures before the job existed (see send_retry)."""
    job_id = step_job_id(sequence_id, step)
    options: dict[str, Any] = {
        "job_id": job_id,
        "retry": SEND_RETRY,
        "result_ttl": STEP_RESULT_TTL,
        "failure_ttl": 30 * 24 * 3600,
    }
    if delay > timedelta(0) and not earlier_attempts:
        at = datetime.now(UTC) + delay
        rq_seam.write_scheduled(queue, job_id, SEND_STEP, (sequence_id, step), options, at)
        return True
    options.update(meta={EARLIER_ATTEMPTS: earlier_attempts} if earlier_attempts else None)
    try:
        if delay > timedelta(0):
            queue.enqueue_in(delay, SEND_STEP, sequence_id, step, **options)
        else:
            queue.enqueue_call(SEND_STEP, args=(sequence_id, step), unique=True, **options)
    except DuplicateJobError:
        return False
    return True
