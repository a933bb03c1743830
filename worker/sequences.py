"""What happens to sequences after they are planned: comeback, unsubscribe, erasure, and the
send-time conditions. Keyed on the member (worker.events.member_key of the address) and on
EventKind, never on one plugin's event names, so every source behaves the same.

Used by the worker's jobs and by the web side (unsubscribe page, operator commands).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from rq import Queue
from rq.job import Job, JobStatus

from .events import member_key
from .personal_data import erase_traces
from .playbook import Step
from .queues import step_job_id
from .store import Feedback, Store

log = logging.getLogger(__name__)

CAME_BACK = "came_back"
WON_BACK = "won_back"
DAY = 24 * 3600
_CANCELLABLE = (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.DEFERRED)


@dataclass(frozen=True)
class Stopped:
    sequence_id: str
    outcome: str
    cancelled_jobs: int


def comeback_outcome(marketing_sent_at: float | None, now: float, won_back_days: int) -> str:
    """Won back if the member returns within the window after a win-back email."""
    if marketing_sent_at is not None and 0 <= now - marketing_sent_at <= won_back_days * DAY:
        return WON_BACK
    return CAME_BACK


def feedback_given(feedback: Feedback | None) -> bool:
    """The member answered the survey (a reason or a comment)."""
    return feedback is not None and bool(feedback.reason or feedback.comment)


def skip_reason(step: Step, feedback: Feedback | None, paused: bool) -> str | None:
    """Why this step must not be sent now (beyond suppression and sequence status), or None."""
    given = feedback_given(feedback)
    if feedback is not None and feedback.no_email:
        return "member answered 'don't email me'"
    if step.only_if_no_feedback and given:
        return "feedback already given (only_if_no_feedback)"
    if step.only_if_reason and (feedback is None or feedback.reason not in step.only_if_reason):
        return f"reason is not one of {', '.join(step.only_if_reason)} (only_if_reason)"
    if step.stream == "marketing" and paused:
        return "subscription paused: win-back dropped"
    if step.only_if_no_reason and feedback is not None and feedback.reason:
        return "member already told us why"  # e.g. in Stripe's cancellation flow
    return None


def cancel_steps(queue: Queue, sequence_id: str, steps: Iterable[str]) -> int:
    """Cancel the step jobs still waiting (scheduled, queued or retry-scheduled), so RQ's
    registries no longer hold them. A job already running re-checks before it sends."""
    ids = [step_job_id(sequence_id, step) for step in steps]
    if not ids:
        return 0
    cancelled = 0
    for job in Job.fetch_many(ids, connection=queue.connection, serializer=queue.serializer):
        if job is not None and job.get_status(refresh=False) in _CANCELLABLE:
            job.cancel()
            cancelled += 1
    return cancelled


def record_comeback(store: Store, queue: Queue, member_key: str, now: float, won_back_days: int):
    """The member is back (any membership, any source): stop every active sequence at once
    and record came_back or won_back. Returns what was stopped (empty: never cancelled).
    `now`: when the member came back; a sequence for a later cancellation is not stopped
    (worker processes may handle one member's events out of order)."""
    stopped = []
    for sid in store.member_sequence_ids(member_key):
        seq = store.load_sequence(sid)
        if seq is None or seq.status != "active" or seq.started_at > now:
            continue
        outcome = comeback_outcome(seq.marketing_sent_at, now, won_back_days)
        # Status first, so a step job starting right now sees it; then empty the registries.
        if store.stop_sequence(sid, outcome, now):
            jobs = cancel_steps(queue, sid, store.planned_steps(sid))
            stopped.append(Stopped(sid, outcome, jobs))
    return stopped


def stop_marketing(store: Store, queue: Queue, member_key: str) -> int:
    """After an unsubscribe: cancel the member's pending marketing steps. Returns jobs
    cancelled (send-time checks of the suppression list cover anything already running)."""
    cancelled = 0
    for sid in store.member_sequence_ids(member_key):
        plan = store.planned_steps(sid)
        marketing = [step for step, stream in plan.items() if stream == "marketing"]
        cancelled += cancel_steps(queue, sid, marketing)
    return cancelled


def suppress_member(
    store: Store, queue: Queue, email: str, reason: str, membership_id: str = ""
) -> tuple[bool, int]:
    """Never email this address again, and cancel its pending marketing steps now.
    `membership_id`: the membership the request came through, when known.
    Returns (newly suppressed, jobs cancelled)."""
    added = store.suppress(email, reason, membership_id)
    return added, stop_marketing(store, queue, member_key(email))


def erase_member(store: Store, queue: Queue, member_key: str) -> tuple[int, int]:
    """Forget the member: cancel every pending step, then delete what is stored about them
    (the suppression entry stays, keyed by a hash; the cancellation records stay, without
    it). Returns (jobs cancelled, keys deleted)."""
    cancelled = 0
    sequence_ids = store.member_sequence_ids(member_key)
    for sid in sequence_ids:
        cancelled += cancel_steps(queue, sid, store.planned_steps(sid))
    erase_traces(store.redis, member_key, sequence_ids)  # reads indexes erase_member deletes
    return cancelled, store.erase_member(member_key)
