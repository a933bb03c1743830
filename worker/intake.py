"""Accepting an event: dedupe, durable record and enqueue. Used by the receiver and by the
spool replay, so both paths give the same guarantees."""

from __future__ import annotations

import logging
from enum import StrEnum

from rq import Queue

from . import rq_seam, subscription_state
from .events import Event, EventKind
from .queues import enqueue_event, event_job_id, event_job_record
from .store import Store

log = logging.getLogger(__name__)
STALE_CHECK_LIMIT = 1000


class Outcome(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"
    RECORDED = "recorded"  # a payment's facts, remembered for the subscription; no job


def submit(
    store: Store, queue: Queue, event: Event, dedupe_ttl: int, *, counted: bool = False
) -> Outcome:
    """`accept`, for callers that need only the outcome."""
    return accept(store, queue, event, dedupe_ttl, counted=counted)[0]


def accept(
    store: Store, queue: Queue, event: Event, dedupe_ttl: int, *, counted: bool = False
) -> tuple[Outcome, str]:
    """Record the event once and queue its handling, in one atomic Redis round trip;
    returns the outcome and the event's id. Raises redis errors to the caller
    (which then spools the event). `counted`: the receiver's metric (queued or duplicate)
    is added in the same round trip.

    The record and the job are written together or not at all, so an accepted event always
    has its job; `requeue_stale` remains the safety net for a job lost afterwards.
    Sources without event ids are deduplicated by subscription state instead
    (worker/subscription_state.py), in the same transaction.
    """
    job = event_job_record(queue, event.event_id)
    # An erasure is no subscription state: each one acts (a member may come back and leave).
    if event.source in subscription_state.STATEFUL_SOURCES and event.kind is not EventKind.ERASED:
        verdict, event_id = subscription_state.accept(
            store, event, dedupe_ttl, job, counted=counted
        )
        if verdict is not subscription_state.Verdict.STALE:
            subscription_state.remember_level_billing(store, event)
        return _OUTCOMES[verdict], event_id
    if not store.accept_event(event, dedupe_ttl, job, counted=counted):
        return Outcome.DUPLICATE, event.event_id
    return Outcome.QUEUED, event.event_id


_OUTCOMES = {
    subscription_state.Verdict.CHANGED: Outcome.QUEUED,
    subscription_state.Verdict.RECORDED: Outcome.RECORDED,
    subscription_state.Verdict.DUPLICATE: Outcome.DUPLICATE,
    subscription_state.Verdict.STALE: Outcome.DUPLICATE,
}


def requeue_stale(
    store: Store, queue: Queue, older_than: float = 60.0, limit: int = STALE_CHECK_LIMIT
) -> int:
    """Queue again any accepted event that has no handling job at all.

    A job that exists (queued, taken into a batch, running, retrying, or failed for an
    operator to retry) is left alone: only an enqueue that never reached Redis is repaired
    here. Only the `limit` oldest pending events are looked at per call, with one EXISTS
    each in one round trip: during a wave thousands wait their turn, and the queue is
    first in, first out, so a lost one becomes one of the oldest soon enough.
    """
    stale = store.stale_pending(older_than, limit=limit)
    if not stale:
        return 0
    exist = rq_seam.jobs_exist(queue.connection, [event_job_id(e) for e in stale])
    requeued = 0
    for event_id, exists in zip(stale, exist, strict=True):
        if exists:
            continue
        log.warning("requeueing event %s: accepted but never queued", event_id)
        enqueue_event(queue, event_id)
        requeued += 1
    return requeued
