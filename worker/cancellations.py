"""Cancellation records for insights: written by the worker for every cancellation, read
back with what followed (sequence outcome, survey answer, address) for the dashboard,
the CSV export and `flask --app hooks report`."""

from __future__ import annotations

from .events import Event
from .insights import Entry, Filters
from .notify import enqueue_cancellation
from .runtime import runtime
from .store import Cancellation, Store


def note_cancellation(event: Event) -> bool:
    """Record the cancellation (once per event) and queue the owner's notification.

    Runs before the sequence is planned, so a cancellation that starts no sequence
    (cooldown) still counts.
    """
    rt = runtime()
    record = Cancellation(
        event_id=event.event_id,
        at=event.occurred_at.timestamp(),
        member_key=event.member.key,
        membership_id=event.membership.id if event.membership else "",
        membership_title=event.membership.title if event.membership else "",
        source=event.source,
        sequence_id=event.event_id,
    )
    if not rt.store.record_cancellation(record):
        return False
    enqueue_cancellation(rt.queue, rt.settings, event.event_id)
    return True


def gather(store: Store, filters: Filters) -> list[Entry]:
    """The records in the filter's window, each with its sequence, answer and address."""
    start, end = filters.window()
    records = store.cancellations(start, end, filters.membership_id)
    seq_ids = [c.sequence_id for c in records]
    sequences = store.sequence_outcomes(seq_ids)
    answers = store.load_many_feedback(seq_ids)
    emails = store.member_emails(sorted({c.member_key for c in records}))
    return [
        Entry(
            cancellation=c,
            sequence=sequences.get(c.sequence_id),
            feedback=answers.get(c.sequence_id),
            email=emails.get(c.member_key, ""),
        )
        for c in records
    ]
