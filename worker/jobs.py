"""RQ job functions. Module-level, taking ids only, idempotent: RQ is at-least-once, so
each may run twice and must still send at most one email per sequence step."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial

from rq import Retry
from rq.job import get_current_job

from . import batch, catchup, liveness, logs, rq_seam, sequences, subscription_state
from .addresses import unsendable_reason
from .cancellations import note_cancellation
from .delivery import Result, deliver
from .enrichment import enrich
from .events import STATEFUL_SOURCES, Event, EventKind, Member, utcnow
from .mail.errors import MailConfigError, TransientMailError
from .privacy import mask_email
from .queues import (
    EARLIER_ATTEMPTS,
    SEND_TRANSIENT_MAX,
    schedule_step,
    send_retry,
    send_retry_delay,
)
from .runtime import Runtime, runtime
from .store import Sequence

log = logging.getLogger(__name__)
# An event job handles the events queued behind it for at most this long, far inside
# JOB_TIMEOUT: what is left goes back to the queue for the next job.
BATCH_SECONDS = 10.0
SKIPPED_METRIC = "farewell_steps_dropped_total"  # steps not planned, by step and reason
UNSENDABLE_METRIC = "farewell_unsendable_addresses_total"  # suppressed when first seen


def handle_event(event_id: str) -> str:
    """RQ job: act on one accepted event, then on the accepted events queued right behind
    it (worker/batch.py), so RQ's cost per job is paid once for many cancellations."""
    outcome = process_event(event_id)
    behind = _process_queued_behind()
    return f"{outcome} (+{behind} queued behind it)" if behind else outcome


def process_event(event_id: str) -> str:
    """Act on one accepted event, then clear it from the pending set."""
    rt = runtime()
    event = rt.store.load_event(event_id)
    if event is None:
        log.warning("event %s: record gone (expired or erased), nothing to do", event_id)
        rt.store.finish_event(event_id)
        return "missing"
    event = enrich(event, rt)  # e.g. Stripe's customer looked up (worker/enrichment.py)
    if event is None:
        rt.store.finish_event(event_id)
        return "no member to write to"
    if event.kind is EventKind.CANCELLED:
        _check_sendable(rt, event.member.email)
    came_back_at = _note_member_event(rt, event)
    outcome = act_on(event, came_back_at)
    rt.store.finish_event(event_id)
    log.info(
        "event %s (%s %s, %s): %s",
        event_id,
        event.source,
        event.name,
        mask_email(event.member.email),
        outcome,
    )
    return outcome


def _check_sendable(rt: Runtime, email: str) -> None:
    """An address no transport of ours can carry is suppressed with the reason now: its
    steps are then skipped ("address suppressed"), never retried for hours."""
    reason = unsendable_reason(email, rt.settings.mail_transport)
    if reason is not None and rt.store.suppress(email, f"unsendable: {reason}"):
        log.warning("%s cannot be sent, suppressed: %s", mask_email(email), reason)
        rt.store.count(UNSENDABLE_METRIC, transport=rt.settings.mail_transport)


def _process_queued_behind() -> int:
    """Take the event jobs queued right behind this one off RQ's queue and handle them
    here. Only in a worker with a heartbeat: if it dies, the sweep puts what it took back.

    An event that fails here goes back to the front of the queue, where RQ runs it as a job
    of its own with the usual retries; the batch ends there. So do the events not reached
    within BATCH_SECONDS (the job's own timeout must never cut a batch short) or before
    the worker was asked to stop.
    """
    rt = runtime()
    owner = liveness.owner()
    size = rt.settings.event_batch - 1
    if owner is None or size < 1:
        return 0
    taken = batch.take(rt.queue, owner, size)
    done: list[str] = []
    deadline = time.monotonic() + BATCH_SECONDS
    try:
        for job_id in taken:
            if time.monotonic() > deadline or liveness.stopping.is_set():
                break
            event_id = batch.event_id_of(job_id)
            with logs.event_context(event_id):
                try:
                    process_event(event_id)
                except Exception:
                    log.exception("event %s failed in a batch; queued again on its own", event_id)
                    break
            done.append(job_id)
    finally:
        batch.settle(rt.queue, owner, done=done, back=taken[len(done) :])
        if done:
            rt.store.count("farewell_jobs_total", len(done), job="handle_event", outcome="ok")
    return len(done)


def _note_member_event(rt: Runtime, event: Event) -> str | None:
    """What every event records about its member (one round trip); returns the member's
    came_back_at as it was before."""
    kind = event.kind
    fields = None
    if kind is not EventKind.ERASED:
        fields = {"last_event": kind.value, "last_event_at": event.occurred_at.isoformat()}
        if kind.is_comeback:
            fields["came_back_at"] = repr(event.occurred_at.timestamp())
    paused = None
    if kind not in (EventKind.ERASED, EventKind.OTHER):
        # Win-backs that come due while paused are dropped at send time (see docs/playbook.md).
        subscription = event.subscription_id or (event.membership.id if event.membership else "")
        paused = (subscription, kind is EventKind.PAUSED)
    return rt.store.note_member_event(event.member, event.event_id, fields, paused)


def act_on(event: Event, came_back_at: str | None = None) -> str:
    """What each kind of event does, whatever source sent it (after _note_member_event)."""
    rt = runtime()
    key = event.member.key
    kind = event.kind
    if kind is EventKind.CANCELLED:
        note_cancellation(event)  # counted for insights even if no sequence starts
        return start_sequence(event, came_back_at)
    if kind.is_comeback:
        stopped = sequences.record_comeback(
            rt.store, rt.queue, key, event.occurred_at.timestamp(), rt.settings.won_back_days
        )
        if not stopped:
            return f"recorded {kind.value} (no active sequence)"
        return "comeback: " + ", ".join(
            f"{s.sequence_id} {s.outcome} ({s.cancelled_jobs} pending step(s) cancelled)"
            for s in stopped
        )
    if kind is EventKind.ERASED:
        cancelled, deleted = sequences.erase_member(rt.store, rt.queue, key)
        return f"erased ({deleted} key(s) deleted, {cancelled} pending step(s) cancelled)"
    return f"recorded {kind.value}"


def start_sequence(event: Event, came_back: str | None) -> str:
    """Plan the playbook's steps for a cancellation. Safe to run again: the sequence is
    created once and every step job has a deterministic id. One sequence per member per
    cooldown, whatever the playbook says. `came_back`: the member's came_back_at. Steps
    are spaced from when Farewell first acts, however late the cancellation came
    (worker/catchup.py)."""
    rt = runtime()
    settings = rt.settings
    membership_id = event.membership.id if event.membership else ""
    now = utcnow()
    locale = event.member.locale or rt.playbook.locale_for(membership_id)
    access_ends_at = event.access_ends_at or _paid_until(rt, event)
    steps = rt.playbook.steps_for(membership_id)
    max_age = settings.max_cancellation_age_days
    planner = partial(
        catchup.plan_steps,
        steps,
        cancelled_at=event.occurred_at,
        min_gap=timedelta(hours=settings.min_email_gap_hours),
        max_age=timedelta(days=max_age) if max_age else None,
    )
    plan = planner(acted_at=now)
    seq = Sequence(
        id=event.event_id,
        member_key=event.member.key,
        event_id=event.event_id,
        membership_id=membership_id,
        membership_title=event.membership.title if event.membership else "",
        locale=locale or settings.default_locale,
        started_at=event.occurred_at.timestamp(),
        access_ends_at=access_ends_at.isoformat() if access_ends_at else "",
        acted_at=now.timestamp(),
        note="; ".join(f"{d.step.id}: {d.reason}" for d in plan.dropped),
    )
    if came_back and float(came_back) > seq.started_at:
        # Sources may deliver out of order (Stripe does): the comeback was handled first.
        return "no new sequence: the member came back after this cancellation"
    cooldown = settings.sequence_cooldown_days * 24 * 3600
    outcome, detail = rt.store.start_sequence(seq, {s.id: s.stream for s in steps}, cooldown)
    if outcome == "cooldown":
        return f"no new sequence: member is in the cooldown of sequence {detail}"
    created = outcome == "created"
    if not created and detail != "active":
        return "sequence exists (stopped), nothing planned"
    if created:
        for dropped in plan.dropped:
            log.warning("sequence %s: step %s dropped: %s", seq.id, dropped.step.id, dropped.reason)
            rt.store.count(SKIPPED_METRIC, step=dropped.step.id, reason="cancellation_too_old")
    else:  # a re-run: the spacing stays anchored where it was first planned
        existing = rt.store.load_sequence(seq.id)
        if existing is not None:
            plan = planner(acted_at=datetime.fromtimestamp(existing.acted_at, UTC))
    planned = 0
    sent_now: list[str] = []
    for step, due in plan.due:
        delay = max(due - now, timedelta(0))
        if delay:
            planned += schedule_step(rt.queue, seq.id, step.id, delay)
        else:
            sent_now.append(f"{step.id} {_send_now(rt, seq.id, step.id, event.member)}")
    current = rt.store.load_sequence(seq.id) if planned else None
    if planned and (current is None or current.status != "active"):
        # A comeback handled by another worker process while we planned: it found no step
        # to cancel yet, so cancel what we just planned.
        sequences.cancel_steps(rt.queue, seq.id, [step.id for step, _ in plan.due])
        return "sequence stopped by a comeback while it was planned; steps cancelled"
    dropped_text = [f"{d.step.id} dropped ({d.reason})" for d in plan.dropped]
    return f"sequence {'started' if created else 'exists'}, " + ", ".join(
        [*sent_now, f"{planned} step(s) planned", *dropped_text]
    )


def _paid_until(rt: Runtime, event: Event) -> datetime | None:
    """For sources whose cancellations do not say: what the subscription's latest payment
    said (MemberPress transaction webhooks), if that is still ahead."""
    if event.source not in STATEFUL_SOURCES or not event.subscription_id:
        return None
    until = subscription_state.paid_until(rt.store, event)
    return until if until is not None and until > event.occurred_at else None


def _send_now(rt: Runtime, sequence_id: str, step_id: str, member: Member) -> str:
    """A step due at once goes out inside the event's job: one RQ job per cancellation,
    not two. When it cannot go now, the step's own job takes over, with its retry policy:
    after a backoff for a transient failure, at once for anything else (the step job then
    fails the same way, and ends in RQ's failed registry if it keeps failing)."""
    try:
        delivery = deliver(sequence_id, step_id, member)
    except MailConfigError as exc:
        log.warning("step %s/%s: handed to its own job: %s", sequence_id, step_id, exc)
    except Exception:
        log.exception("step %s/%s: handed to its own job", sequence_id, step_id)
    else:
        if delivery.result is Result.DEFERRED:
            assert delivery.cause is not None
            delay = send_retry_delay(0, delivery.cause.retry_after)
            log.warning(
                "step %s/%s: transient failure, its job retries in %ss: %s",
                sequence_id,
                step_id,
                delay,
                delivery.cause,
            )
            schedule_step(
                rt.queue, sequence_id, step_id, timedelta(seconds=delay), earlier_attempts=1
            )
            return f"deferred {delay}s"
        if delivery.result is not Result.BUSY:
            return delivery.outcome
        log.warning("step %s/%s: handed to its own job: %s", sequence_id, step_id, delivery.detail)
    schedule_step(rt.queue, sequence_id, step_id, timedelta(0))
    return "handed to its job"


def send_step(sequence_id: str, step_id: str) -> str | Retry:
    """RQ job for one step: a scheduled one (win-back), or one that could not go out inside
    its event's job. RQ's retry policy applies here (worker/delivery.py does the rest): a
    transient failure comes back after a backoff, a claim another worker holds (ClaimBusy)
    and unexpected errors by SEND_RETRY, our mail configuration never (it needs a human)."""
    try:
        delivery = deliver(sequence_id, step_id)
    except MailConfigError:
        rq_seam.no_retry()  # no retry can fix it: straight to the failed registry
        raise
    if delivery.result is Result.DEFERRED:
        assert delivery.cause is not None
        return _retry_later(sequence_id, step_id, delivery.cause)
    if delivery.result is Result.BUSY:
        raise ClaimBusy(delivery.detail)
    return delivery.outcome


class ClaimBusy(Exception):
    """The step's claim is held by another worker that has not committed yet: RQ retries."""


def _retry_later(sequence_id: str, step_id: str, exc: TransientMailError) -> Retry:
    """The step job's next attempt: backoff from RQ's count of this job's retries."""
    job = get_current_job()
    earlier = int(job.meta.get(EARLIER_ATTEMPTS, 0)) if job is not None else 0
    attempt = earlier + ((job.number_of_retries or 0) if job is not None else 0)
    retry = send_retry(attempt, exc.retry_after, earlier)
    if attempt >= SEND_TRANSIENT_MAX:  # RQ has retried that many times: this was the last
        log.error(
            "step %s/%s: transient failure %d times, giving up until "
            "`flask --app hooks jobs retry-failed`: %s",
            sequence_id,
            step_id,
            attempt + 1,
            exc,
        )
    else:
        log.warning(
            "step %s/%s: transient failure, retry %d/%d in %ss: %s",
            sequence_id,
            step_id,
            attempt + 1,
            SEND_TRANSIENT_MAX,
            retry.intervals[0],
            exc,
        )
    return retry
