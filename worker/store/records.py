"""What the store reads and writes, as types: one dataclass per record, and the parsing of
the Redis hashes they live in (see keys.py for the fields)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from ..events import Member


@dataclass(frozen=True)
class JobRecord:
    """An RQ job to write together with an accepted event (built by worker.rq_seam, which
    names RQ's keys)."""

    id: str
    key: str  # the job's hash
    queue_key: str  # the queue's list of job ids
    queues_key: str  # RQ's set of queues
    fields: tuple[str | bytes, ...]  # flat field, value, ... for HSET


@dataclass(frozen=True)
class Sequence:
    id: str
    member_key: str
    event_id: str
    membership_id: str
    membership_title: str
    locale: str
    started_at: float
    access_ends_at: str = ""  # ISO date-time, empty when the source did not say
    status: str = "active"  # active | stopped (comeback, erasure)
    outcome: str = ""  # "" | "came_back" | "won_back" (came back soon after a win-back email)
    came_back_at: float | None = None
    marketing_sent_at: float | None = None  # when the last marketing (win-back) email went
    acted_at: float = 0.0  # when Farewell first acted on it (steps are spaced from here)
    note: str = ""  # what the owner should know, e.g. a step dropped (worker/catchup.py)

    @classmethod
    def from_hash(cls, sequence_id: str, data: Mapping[str, str]) -> Sequence:
        return cls(
            id=sequence_id,
            member_key=data["member_key"],
            event_id=data["event_id"],
            membership_id=data.get("membership_id", ""),
            membership_title=data.get("membership_title", ""),
            locale=data["locale"],
            started_at=float(data["started_at"]),
            access_ends_at=data.get("access_ends_at", ""),
            status=data.get("status", "active"),
            outcome=data.get("outcome", ""),
            came_back_at=float(data["came_back_at"]) if data.get("came_back_at") else None,
            marketing_sent_at=(
                float(data["marketing_sent_at"]) if data.get("marketing_sent_at") else None
            ),
            acted_at=float(data.get("acted_at") or data["started_at"]),
            note=data.get("note", ""),
        )


@dataclass(frozen=True)
class Feedback:
    sequence_id: str
    reason: str  # a stable reason id from email_templates/reasons.toml, or ""
    comment: str
    no_email: bool  # "please don't email me again"
    at: float

    @classmethod
    def from_hash(cls, sequence_id: str, data: Mapping[str, str]) -> Feedback:
        return cls(
            sequence_id=sequence_id,
            reason=data.get("reason", ""),
            comment=data.get("comment", ""),
            no_email=data.get("no_email") == "1",
            at=float(data.get("at", 0)),
        )


@dataclass(frozen=True)
class SendChecks:
    """A step's send-time state: its sequence, and what may stop it going out."""

    sequence: Sequence | None
    member: Member | None  # when asked for (send_checks' with_member)
    suppressed: bool
    feedback: Feedback | None
    paused: bool  # any of the member's subscriptions


@dataclass(frozen=True)
class SequenceOutcome:
    outcome: str  # "" | "came_back" | "won_back", as on Sequence
    came_back_at: float | None = None
    marketing_sent_at: float | None = None  # a win-back (marketing) email went out


@dataclass(frozen=True)
class Cancellation:
    """What insights count: one per cancellation event. Holds no address (member_key is
    a hash), so the counts survive a member's erasure without keeping who they were."""

    event_id: str
    at: float  # when it happened (epoch seconds, UTC)
    member_key: str
    membership_id: str
    membership_title: str
    source: str
    sequence_id: str  # == event_id; the sequence may not exist (cooldown, erased)
    # Monthly revenue lost, as the source stated it (worker/revenue.py); None: unknown.
    # A money aggregate, not personal data: it may outlive the member's erasure.
    mrr: Decimal | None = None
    currency: str = ""

    @classmethod
    def from_hash(cls, event_id: str, data: Mapping[str, str]) -> Cancellation:
        mrr = data.get("mrr", "")
        return cls(
            event_id=event_id,
            at=float(data["at"]),
            member_key=data.get("member_key", ""),
            membership_id=data.get("membership_id", ""),
            membership_title=data.get("membership_title", ""),
            source=data.get("source", ""),
            sequence_id=data.get("sequence_id", event_id),
            mrr=Decimal(mrr) if mrr else None,
            currency=data.get("currency", ""),
        )


@dataclass(frozen=True)
class Suppression:
    address_hash: str
    reason: str  # "unsubscribed", "asked_no_email", "bounced", "complained", "manual", ...
    at: float
    hint: str  # masked address, e.g. "j***@example.com"
    membership_id: str = ""  # whose email's link it came from ("" unknown, e.g. manual)

    @classmethod
    def from_json(cls, address_hash: str, raw: str) -> Suppression:
        data = json.loads(raw)
        return cls(
            address_hash,
            data["reason"],
            float(data["at"]),
            data.get("hint", ""),
            data.get("membership_id", ""),
        )


def member_fields(member: Member, extra: Mapping[str, str]) -> dict[str, str]:
    """The member hash's fields for `member`, plus `extra` (last event, came_back_at)."""
    return {
        "email": member.email,
        "member_id": member.id,
        "first_name": member.first_name,
        "last_name": member.last_name,
        **({"locale": member.locale} if member.locale else {}),
        **extra,
    }


def member_from(data: Mapping[str, str]) -> Member | None:
    """The member in a member hash; None when there is none (never saved, or erased)."""
    if not data or "email" not in data:
        return None
    return Member(
        email=data["email"],
        id=data.get("member_id", ""),
        first_name=data.get("first_name", ""),
        last_name=data.get("last_name", ""),
        locale=data.get("locale") or None,
    )


def sequence_from(sequence_id: str, data: Mapping[str, str]) -> Sequence | None:
    """The sequence in a sequence hash; None when there is none (or only stray fields)."""
    if not data or "locale" not in data:
        return None
    return Sequence.from_hash(sequence_id, data)
