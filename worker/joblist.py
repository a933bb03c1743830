"""RQ's failed registry, for operators: list it, and requeue it once the cause is fixed."""

from __future__ import annotations

from dataclasses import dataclass

from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job


@dataclass(frozen=True)
class FailedJob:
    job_id: str
    reason: str  # the last line of the exception, or why RQ gave up


def failed_jobs(queue: Queue) -> list[FailedJob]:
    registry = queue.failed_job_registry
    entries = []
    for job_id in registry.get_job_ids():
        try:
            job = Job.fetch(job_id, connection=queue.connection, serializer=queue.serializer)
        except NoSuchJobError:
            continue
        result = job.latest_result()
        text = (result.exc_string or "") if result else ""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else "retries exhausted"
        entries.append(FailedJob(job_id, reason))
    return entries


def retry_failed(queue: Queue) -> int:
    """Requeue every failed job now, with a fresh retry budget. Jobs are idempotent (a step
    already sent is skipped), so requeueing one that did its work is harmless."""
    registry = queue.failed_job_registry
    requeued = 0
    for job_id in registry.get_job_ids():
        try:
            job = Job.fetch(job_id, connection=queue.connection, serializer=queue.serializer)
        except NoSuchJobError:
            registry.remove(job_id)
            continue
        job.number_of_retries = 0  # return-based retries (transient mail failures)
        try:
            registry.requeue(job)
        except InvalidJobOperation:
            continue  # requeued by someone else meanwhile
        requeued += 1
    return requeued
