"""The normalized event every source produces, whatever plugin sent it.

Modelled on django-anymail's tracking event: a closed set of kinds with an `other`
catch-all, normalized fields (aware datetimes, enum values, plain strings) and the
original payload carried along in `raw` for anything we do not normalize.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# Sources whose deliveries carry no event id: deduplicated by subscription state.
STATEFUL_SOURCES = frozenset({"memberpress", "woocommerce", "pmpro"})


class EventKind(StrEnum):
    CANCELLED = "cancelled"  # the member stopped paying; access may run to the period's end
    EXPIRED = "expired"  # access ended (after a cancellation, or a fixed term)
    PAUSED = "paused"
    RESUMED = "resumed"  # a paused or cancelled subscription is active again: a comeback
    REACTIVATED = "reactivated"  # a new subscription for a known member: a comeback
    ERASED = "erased"  # the member was deleted at the source: forget them
    PAYMENT = "payment"  # a paid transaction: until when access is paid (no action)
    OTHER = "other"

    @property
    def is_comeback(self) -> bool:
        return self in (EventKind.RESUMED, EventKind.REACTIVATED)


@dataclass(frozen=True)
class Member:
    email: str
    id: str = ""
    first_name: str = ""
    last_name: str = ""
    locale: str | None = None  # only when the source tells us

    @property
    def key(self) -> str:
        """Stable, non-reversible id for Redis keys: the same person across sources."""
        return member_key(self.email)


@dataclass(frozen=True)
class MemberToResolve(Member):
    """A member the source names only by its own id (Stripe: a customer id, no address).
    The source's enrichment step (worker/enrichment.py) looks them up before the worker
    acts on the event. Stored as a member with an empty email."""

    email: str = ""


@dataclass(frozen=True)
class Membership:
    id: str
    title: str = ""


@dataclass(frozen=True)
class Event:
    source: str  # "memberpress", "woocommerce", ...
    name: str  # the source's own event name, e.g. "subscription-stopped"
    kind: EventKind
    occurred_at: datetime  # aware, UTC
    member: Member
    membership: Membership | None = None
    subscription_id: str = ""
    status: str = ""  # the source's own status string, part of the dedupe identity
    access_ends_at: datetime | None = None  # when paid-up access runs out, if the source says
    amount: str = ""  # a payment's amount as the source wrote it ("10.00"), else ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def event_id(self) -> str:
        """Stable per real-world event, so a re-delivery dedupes.

        Derived from what identifies the event (source, name, subscription, status), never
        from the delivery: plugins resend the same event with new delivery ids. Sources
        without event ids are deduplicated by state instead (worker/subscription_state.py):
        their time joins the identity, so each real change has its own id (a second pause
        is byte-identical to the first) while a spooled delivery replayed keeps one.
        """
        subject = self.subscription_id or self.member.id or self.member.key
        parts = [self.source, self.name, subject, self.status]
        if self.source in STATEFUL_SOURCES:
            parts.append(self.occurred_at.isoformat())
        identity = "\x1f".join(parts)
        digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
        return f"{self.source}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        # Like dataclasses.asdict, but `raw` is shared rather than deep-copied: copying the
        # plugin's payload was the costliest step of accepting a webhook. Treat as read-only.
        data = {k: asdict(v) if is_dataclass(v) else v for k, v in vars(self).items()}
        data["kind"] = self.kind.value
        data["occurred_at"] = self.occurred_at.isoformat()
        data["access_ends_at"] = self.access_ends_at.isoformat() if self.access_ends_at else None
        data["event_id"] = self.event_id
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        membership = data.get("membership")
        return cls(
            source=data["source"],
            name=data["name"],
            kind=EventKind(data["kind"]),
            occurred_at=datetime.fromisoformat(data["occurred_at"]),
            member=_member(data["member"]),
            membership=Membership(**membership) if membership else None,
            subscription_id=data.get("subscription_id", ""),
            status=data.get("status", ""),
            access_ends_at=_parse_dt(data.get("access_ends_at")),
            amount=data.get("amount", ""),
            raw=data.get("raw") or {},
        )


def _member(data: dict[str, Any]) -> Member:
    return Member(**data) if data.get("email") else MemberToResolve(**data)


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def member_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def utcnow() -> datetime:
    return datetime.now(UTC)
