"""RQ job functions. Module-level, taking ids only, idempotent: RQ is at-least-once, so
each may run twice and must still send at most one email per sequence step."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from redis.exceptions import RedisError

from . import liveness
from .compose import compose
from .events import Event, EventKind, utcnow
from .mail import Transport
from .mail.errors import RecipientRejected, TransientMailError
from .mail.message import OutgoingEmail
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

    # Render first: everything that can fail without sending happens before the claim.
    email = compose(rt.settings, rt.renderer, seq, member, step, rt.reasons)
    owner = liveness.owner()
    existing = rt.store.claim_send(sequence_id, step_id, owner)
    if existing is not None and existing.startswith("sending|"):
        # Another worker holds the claim and has not reached its point of no return: it
        # is sending now, or it died and its claim becomes ours once its heartbeat is
        # gone. Either way, come back later (RQ's Retry) instead of dropping the step.
        raise ClaimBusy(f"step {sequence_id}/{step_id} is being sent by another worker")
    if existing is not None:
        return _skip(sequence_id, step_id, f"already claimed ({existing.split('|')[0]})")
    transport = rt.transport
    try:
        message_id = _send_committed(transport, email, lambda: _commit(sequence_id, step_id))
    except ClaimLost:
        return _skip(sequence_id, step_id, "claim taken over by another worker")
    except TransientMailError as exc:
        _failed(transport.name, "deferred" if exc.sent_nothing else "uncertain", exc)
        if exc.sent_nothing:
            rt.store.release_send(sequence_id, step_id, owner)
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
        _failed(transport.name, "rejected", exc)
        rt.store.mark_sent(sequence_id, step_id, "rejected")
        log.warning(
            "step %s/%s: %s rejected: %s", sequence_id, step_id, mask_email(member.email), exc
        )
        return "rejected"
    except Exception as exc:
        # Configuration and programming errors: the transport committed to nothing.
        _failed(transport.name, "error", exc)
        rt.store.release_send(sequence_id, step_id, owner)
        raise
    rt.store.mark_sent(sequence_id, step_id, message_id)
    rt.store.count("farewell_emails_total", transport=transport.name, result="sent")
    rt.store.log_send(
        {
            "sequence": sequence_id,
            "step": step_id,
            "transport": transport.name,
            "message_id": message_id,
            "at": repr(time.time()),
        }
    )
    log.info(
        "step %s/%s sent to %s via %s",
        sequence_id,
        step_id,
        mask_email(member.email),
        transport.name,
    )
    return "sent"


class ClaimBusy(Exception):
    """The step's claim is held by another worker that has not committed yet: retry."""


class ClaimLost(Exception):
    """Our send claim was taken over while we were not looking: send nothing."""


def _commit(sequence_id: str, step_id: str) -> None:
    if not runtime().store.commit_send(sequence_id, step_id, liveness.owner()):
        raise ClaimLost(f"{sequence_id}/{step_id}")


def _send_committed(transport: Transport, email: OutgoingEmail, commit: Callable[[], None]) -> str:
    """Call the transport, marking the claim `committing` at its point of no return.

    A transport that takes `commit` calls it itself just before the message leaves (SMTP:
    after the envelope was accepted, before DATA), so a crash before that point lets
    another worker send; for the others the whole call counts as the point of no return.
    """
    if "commit" in inspect.signature(transport.send).parameters:
        return transport.send(email, commit=commit)  # type: ignore[call-arg]
    commit()
    return transport.send(email)


def _failed(transport: str, result: str, exc: Exception) -> None:
    store = runtime().store
    store.count("farewell_emails_total", transport=transport, result=result)
    try:
        store.record_send_error(transport, f"{type(exc).__name__}: {exc}")
    except RedisError:
        pass


def _skip(sequence_id: str, step_id: str, reason: str) -> str:
    log.info("step %s/%s skipped: %s", sequence_id, step_id, reason)
    return f"skipped: {reason}"
