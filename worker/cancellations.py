"""Cancellation records for insights: written by the worker for every cancellation (read
back by `worker.insights.gather` for the dashboard, the CSV export and
`flask --app hooks report`)."""

from __future__ import annotations

from typing import Any

from . import subscription_state
from .events import Event
from .notify import enqueue_cancellation
from .revenue import mrr_of
from .runtime import runtime
from .store import Cancellation, Store


def _revenue(event: Event, store: Store, default_currency: str) -> dict[str, Any]:
    money = mrr_of(event.source, event.raw, default_currency)
    if money is None and event.source == "pmpro":
        # The push names no level: the billing of the level the member last got.
        billing = subscription_state.level_billing(store, event)
        money = billing.monthly(default_currency) if billing else None
    return {"mrr": money.amount, "currency": money.currency} if money else {}


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
        **_revenue(event, rt.store, rt.settings.currency),
    )
    if not rt.store.record_cancellation(record):
        return False
    enqueue_cancellation(rt.queue, rt.settings, event.event_id)
    return True
