"""RQ job functions. Module-level, taking ids only, idempotent: RQ is at-least-once, so
each may run twice and must still send at most one email per sequence step."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from .compose import compose
from .events import Event, EventKind, utcnow
from .mail.errors import MailConfigError, RecipientRejected, TransientMailError
from .privacy import mask_email
from .queues import schedule_step
from .runtime import runtime
from .store import Sequence

log = logging.getLogger(__name__)


def handle_event(event_id: str) -> str:
    """Act on one accepted event, then clear it from the pending set."""
    rt = runtime()
    event = rt.store.load_event(event_id)
    if event is None:
        log.warning("event %s: record gone (expired or erased), nothing to do", event_id)
        rt.store.finish_event(event_id)
        return "missing"
    if event.kind is not EventKind.ERASED:
        rt.store.save_member(
            event.member, last_event=event.kind.value, last_event_at=event.occurred_at.isoformat()
        )
    if event.kind is EventKind.CANCELLED:
        outcome = start_sequence(event)
    else:
        outcome = f"recorded {event.kind.value}"
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


def start_sequence(event: Event) -> str:
    """Plan the playbook's steps for a cancellation. Safe to run again: the sequence is
    created once and every step job has a deterministic id."""
    rt = runtime()
    membership_id = event.membership.id if event.membership else ""
    seq = Sequence(
        id=event.event_id,
        member_key=event.member.key,
        event_id=event.event_id,
        membership_id=membership_id,
        membership_title=event.membership.title if event.membership else "",
        locale=event.member.locale or rt.settings.default_locale,
        started_at=event.occurred_at.timestamp(),
        access_ends_at=event.access_ends_at.isoformat() if event.access_ends_at else "",
    )
    created = rt.store.create_sequence(seq)
    planned = 0
    now = utcnow()
    for step in rt.playbook.steps_for(membership_id):
        delay = max(event.occurred_at + step.delay - now, timedelta(0))
        if not delay and send_now(seq.id, step.id):
            continue
        planned += schedule_step(rt.queue, seq.id, step.id, delay)
    return f"sequence {'started' if created else 'exists'}, {planned} step(s) planned"


def send_step(sequence_id: str, step_id: str) -> str:
    """Render and send one step, unless something at send time says not to."""
    rt = runtime()
    seq = rt.store.load_sequence(sequence_id)
    if seq is None:
        return _skip(sequence_id, step_id, "sequence no longer exists")
    if seq.status != "active":
        return _skip(sequence_id, step_id, f"sequence {seq.status}")
    member = rt.store.load_member(seq.member_key)
    if member is None:
        return _skip(sequence_id, step_id, "member erased")
    step = rt.playbook.step(seq.membership_id, step_id)
    if step is None:
        return _skip(sequence_id, step_id, "step no longer in the playbook")
    if rt.store.is_suppressed(member.email):
        return _skip(sequence_id, step_id, "address suppressed")

    existing = rt.store.claim_send(sequence_id, step_id)
    if existing is not None:
        return _skip(sequence_id, step_id, f"already claimed ({existing})")
    try:
        email = compose(rt.settings, rt.renderer, seq, member, step, rt.reasons)
        message_id = rt.transport.send(email)
    except TransientMailError as exc:
        if exc.sent_nothing:
            rt.store.release_send(sequence_id, step_id)
        log.warning(
            "step %s/%s: transient failure, %s: %s",
            sequence_id,
            step_id,
            "will retry" if exc.sent_nothing else "not retried (may have been sent)",
            exc,
        )
        if exc.sent_nothing:
            raise
        return "uncertain"
    except RecipientRejected as exc:
        rt.store.mark_sent(sequence_id, step_id, "rejected")
        log.warning(
            "step %s/%s: %s rejected: %s", sequence_id, step_id, mask_email(member.email), exc
        )
        return "rejected"
    except MailConfigError:
        rt.store.release_send(sequence_id, step_id)
        raise
    except Exception:
        # Rendering and programming errors happen before anything is sent.
        rt.store.release_send(sequence_id, step_id)
        raise
    rt.store.mark_sent(sequence_id, step_id, message_id)
    rt.store.log_send(
        {
            "sequence": sequence_id,
            "step": step_id,
            "transport": rt.transport.name,
            "message_id": message_id,
            "at": repr(time.time()),
        }
    )
    log.info(
        "step %s/%s sent to %s via %s",
        sequence_id,
        step_id,
        mask_email(member.email),
        rt.transport.name,
    )
    return "sent"


def send_now(sequence_id: str, step_id: str) -> bool:
    """Send a step that is due now inside handle_event, saving a job per cancellation.

    Idempotent like send_step itself (its send claim). Any failure leaves the step to a
    send_step job instead, with its retry policy: False means "schedule it".
    """
    try:
        send_step(sequence_id, step_id)
    except Exception as exc:
        log.warning(
            "step %s/%s: inline send failed (%s); queued as a job", sequence_id, step_id, exc
        )
        return False
    return True


def _skip(sequence_id: str, step_id: str, reason: str) -> str:
    log.info("step %s/%s skipped: %s", sequence_id, step_id, reason)
    return f"skipped: {reason}"
