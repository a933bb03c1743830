"""Idempotency by state, for sources that send no event id (MemberPress, WooCommerce, PMPro).

Their deliveries carry the subscription's state at send time and nothing that tells one
real change from another: a resume after a second pause is byte-identical to the first
resume. So Farewell keeps each subscription's last known state and acts on a delivery only
when it changes that state (Stripe and Standard Webhooks keep their own event ids):

- the same state again is a duplicate (a resend, or a plugin firing twice), and so is a
  cancellation of a subscription already cancelled since it was last active (stopped ->
  expired -> the same stopped resent): only a comeback (resumed, reactivated) re-arms it.
  A duplicate is answered with the id of the event that holds the state;
- a delivery older than the state's last change is stale (a spool replay overtaken by a
  newer delivery, or WooCommerce's send-time body older than what we have);
- any other state is a change (the hash counts them in `revision`): recorded and queued
  under an event id that includes the delivery's time, so pause -> resume -> pause ->
  resume is four events, each with its own RQ job.

Payments (MemberPress transaction webhooks) do not change the state: they record the
latest paid-until date and amount, which the subscription's cancellation then carries
(the email's "you keep access until ...").

Key (under the `farewell:` prefix):

    substate:{source}:{subject hash}   hash: state, changed_at, revision, expires_at,
                                       amount, paid_at, event_id (the last change),
                                       cancelled_by (the cancellation's event id, until a
                                       comeback); for PMPro also level_amount,
                                       level_cycle_number, level_cycle_period (no TTL;
                                       no personal data)

The subject is the subscription id, else the source's member id, else the member key (a
MemberPress cancellation may come without `data.id`: it is still deduplicated).

PMPro's cancellation push names no level, so the billing of the level that made the
member active is remembered beside the state (`remember_level_billing`, after the state
test accepted the delivery) and gives the cancellation its MRR (`level_billing`).

The check and the accept are one Lua script (one round trip, like any other webhook): the
state test, then ACCEPT unchanged (worker/store/scripts.py STATE_ACCEPT), so an event
that changes the state is recorded and queued with its job or not at all. Two identical
deliveries racing are serialized by Redis: the second finds the state the first wrote, a
duplicate.

The event id of such a delivery includes its time (worker/events.py), so each real change
gets its own id and RQ job, while a spooled delivery replayed twice keeps one id.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .events import STATEFUL_SOURCES, Event, EventKind
from .revenue import LevelBilling, pmpro_level_billing
from .store import PREFIX, RECEIVED_METRIC, JobRecord, Store, metric_field
from .store.scripts import accept_arguments
from .webhook_log import accept_record

NEVER = "never"  # a payment whose access never expires (MemberPress's zero date)
__all__ = ["STATEFUL_SOURCES", "SubscriptionState", "Verdict", "accept", "load", "state_key"]


def state_key(source: str, subject: str) -> str:
    digest = hashlib.sha256(subject.encode()).hexdigest()[:24]
    return f"{PREFIX}substate:{source}:{digest}"


def subject_of(event: Event) -> str:
    """What a state belongs to: the subscription, else the source's member id, else the
    member (a MemberPress cancellation without `data.id`)."""
    return event.subscription_id or event.member.id or event.member.key


def _role(kind: EventKind) -> str:
    if kind is EventKind.CANCELLED:
        return "cancel"
    return "comeback" if kind.is_comeback else ""


@dataclass(frozen=True)
class SubscriptionState:
    state: str = ""  # the normalized status the source reported last ("" = never seen)
    changed_at: float = 0.0  # when that delivery happened (the event's occurred_at)
    revision: int = 0  # how many changes Farewell acted on
    expires_at: str = ""  # the latest payment's paid-until (ISO), NEVER, or ""
    amount: str = ""
    paid_at: float = 0.0

    @classmethod
    def from_hash(cls, data: Mapping[str, str]) -> SubscriptionState:
        return cls(
            state=data.get("state", ""),
            changed_at=float(data.get("changed_at") or 0),
            revision=int(data.get("revision") or 0),
            expires_at=data.get("expires_at", ""),
            amount=data.get("amount", ""),
            paid_at=float(data.get("paid_at") or 0),
        )

    @property
    def paid_until(self) -> datetime | None:
        """The latest payment's paid-until date; None if unknown or never ending."""
        if not self.expires_at or self.expires_at == NEVER:
            return None
        return datetime.fromisoformat(self.expires_at)


class Verdict(StrEnum):
    CHANGED = "changed"  # a new state: recorded and queued, to act on
    RECORDED = "recorded"  # a payment's facts were remembered; nothing to act on
    DUPLICATE = "duplicate"  # the state (or payment) we already have, or a replayed event
    STALE = "stale"  # older than the last change we know of


_VERDICTS = {
    1: Verdict.CHANGED,
    0: Verdict.DUPLICATE,
    -1: Verdict.DUPLICATE,
    -2: Verdict.STALE,
    2: Verdict.RECORDED,
}


def load(store: Store, source: str, subject: str) -> SubscriptionState:
    return SubscriptionState.from_hash(store.redis.hgetall(state_key(source, subject)))


def paid_until(store: Store, event: Event) -> datetime | None:
    """What the subscription's latest payment said, for a cancellation that does not say."""
    return load(store, event.source, subject_of(event)).paid_until


_BILLING_FIELDS = ("level_amount", "level_cycle_number", "level_cycle_period")


def remember_level_billing(store: Store, event: Event) -> bool:
    """Keep the billing of the PMPro level this delivery gives, for the cancellation that
    may follow; True if there was one to keep. Call only for a delivery that was not stale."""
    billing = pmpro_level_billing(event.raw) if event.source == "pmpro" else None
    if billing is None:
        return False
    values = (billing.amount, billing.cycle_number, billing.cycle_period)
    key = state_key(event.source, subject_of(event))
    store.redis.hset(key, mapping=dict(zip(_BILLING_FIELDS, values, strict=True)))
    return True


def level_billing(store: Store, event: Event) -> LevelBilling | None:
    """The billing of the level the subscription last got, as remembered; None if none."""
    values = store.redis.hmget(state_key(event.source, subject_of(event)), _BILLING_FIELDS)
    return LevelBilling(*values) if values[0] is not None else None


def accept(
    store: Store,
    event: Event,
    dedupe_ttl: int,
    job: JobRecord,
    *,
    counted: bool = False,
) -> tuple[Verdict, str]:
    """Test the delivery against the subscription's state and, if it changes it, record
    and queue it (store.accept_event's work), atomically, in one round trip. Returns the
    verdict and the event id to report: for a duplicate state, the event that holds it."""
    if event.kind is EventKind.PAYMENT:
        paid = event.access_ends_at.isoformat() if event.access_ends_at else NEVER
        head = ["payment", paid, event.amount]
    else:
        head = ["state", event.status, ""]
    labels = {"source": event.source, "kind": event.kind.value}
    recorded, queued, duplicate = (
        metric_field(RECEIVED_METRIC, {**labels, "status": status}) if counted else ""
        for status in ("recorded", "queued", "duplicate")
    )
    head += [repr(event.occurred_at.timestamp()), recorded, _role(event.kind), event.event_id]
    event_json = json.dumps(event.to_dict())
    delivery = accept_record(event.source, event.name, event.event_id) if counted else None
    keys, args = accept_arguments(
        event.event_id, event_json, dedupe_ttl, time.time(), (queued, duplicate), job, delivery
    )
    code, holder = store.accept_state(state_key(event.source, subject_of(event)), head, keys, args)
    return _VERDICTS[code], holder or event.event_id
