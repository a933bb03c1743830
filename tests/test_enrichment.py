"""Per-source enrichment and the member still to be resolved (the Stripe lookup itself,
against a real HTTP server, is in tests/test_stripe_source.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.enrichment import ENRICHERS, enrich
from worker.events import Event, EventKind, Member, MemberToResolve

AT = datetime(2026, 1, 2, tzinfo=UTC)


def _event(source: str, member: Member) -> Event:
    return Event(source, "cancelled", EventKind.CANCELLED, AT, member, subscription_id="s1")


def test_a_member_to_resolve_survives_the_event_record():
    event = _event("stripe", MemberToResolve(id="cus_1"))
    again = Event.from_dict(event.to_dict())
    assert again == event and isinstance(again.member, MemberToResolve)
    assert event.to_dict()["member"]["email"] == ""  # stored as before the type existed


def test_a_member_with_an_address_is_a_plain_member_after_the_record():
    event = _event("memberpress", Member(email="jane@example.com"))
    assert type(Event.from_dict(event.to_dict()).member) is Member


def test_a_source_without_a_step_passes_its_events_through():
    assert "memberpress" not in ENRICHERS
    event = _event("memberpress", Member(email="jane@example.com"))
    assert enrich(event, None) is event


def test_a_member_nobody_resolved_is_never_written_to():
    assert enrich(_event("elsewhere", MemberToResolve(id="x")), None) is None
