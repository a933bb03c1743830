"""MemberPress payload parsing: pure, no Flask app or Redis needed."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from hooks.sources import Ignored, PayloadError, memberpress
from tests import payloads
from worker.events import Event, EventKind


def parse(payload) -> Event | Ignored:
    return memberpress.parse(json.dumps(payload).encode())


def test_subscription_stopped_is_a_cancellation_with_every_field_normalized():
    event = parse(payloads.memberpress())
    assert isinstance(event, Event)
    assert event.source == "memberpress"
    assert event.name == "subscription-stopped"
    assert event.kind is EventKind.CANCELLED
    assert event.member.email == "jane.doe@example.com"
    assert event.member.id == "56"  # a JSON number, kept as a string
    assert event.member.first_name == "Jane"
    assert event.member.last_name == "Doe"
    assert event.member.locale is None
    assert event.membership is not None
    assert (event.membership.id, event.membership.title) == ("3006", "Gold Club")
    assert event.subscription_id == "128"
    assert event.status == "cancelled"
    assert event.occurred_at.tzinfo is not None
    assert event.raw["data"]["gateway"] == "stripe"
    assert event.event_id.startswith("memberpress-")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("subscription-expired", EventKind.EXPIRED),
        ("subscription-paused", EventKind.PAUSED),
        ("subscription-resumed", EventKind.RESUMED),
        ("subscription-created", EventKind.REACTIVATED),
    ],
)
def test_other_subscription_events_are_parsed_into_their_kinds(name, kind):
    event = parse(payloads.memberpress(name, status="active"))
    assert isinstance(event, Event)
    assert event.kind is kind


def test_member_deleted_is_an_erasure_of_that_member():
    event = parse(payloads.memberpress_member_deleted(email="gone@example.com", member_id=9))
    assert isinstance(event, Event)
    assert event.kind is EventKind.ERASED
    assert event.member.email == "gone@example.com"
    assert event.member.id == "9"


@pytest.mark.parametrize(
    "name", ["transaction-refunded", "member-logged-in", "subscription-upgraded"]
)
def test_events_we_do_not_act_on_are_ignored_with_a_reason(name):
    result = parse(payloads.memberpress(name))
    assert isinstance(result, Ignored)
    assert name in result.reason


def test_a_delivery_keeps_its_id_when_replayed_from_the_spool():
    event = parse(payloads.memberpress())
    assert Event.from_dict(event.to_dict()).event_id == event.event_id


def test_byte_identical_deliveries_are_told_apart_by_their_time():
    """A second pause is byte-identical to the first: the subscription's state decides
    (worker/subscription_state.py), and each change needs its own event id."""
    assert parse(payloads.memberpress()).event_id != parse(payloads.memberpress()).event_id


def test_a_different_subscription_at_the_same_instant_is_a_different_event():
    event = parse(payloads.memberpress())
    assert replace(event, subscription_id="129").event_id != event.event_id


def test_the_event_name_is_part_of_the_identity():
    stopped = parse(payloads.memberpress("subscription-stopped", status="active"))
    resumed = parse(payloads.memberpress("subscription-resumed", status="active"))
    assert stopped.event_id != resumed.event_id


def test_locale_is_taken_from_the_member_when_the_site_sends_one():
    event = parse(payloads.memberpress(locale="pt-BR"))
    assert event.member.locale == "pt_BR"


def test_expires_at_gives_the_access_end_and_zeros_mean_unknown():
    data = payloads.memberpress()
    data["data"]["expires_at"] = "2026-12-31 23:59:59"
    assert parse(data).access_ends_at == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    data["data"]["expires_at"] = "0000-00-00 00:00:00"
    assert parse(data).access_ends_at is None


def _without(path: str) -> dict:
    payload = payloads.memberpress()
    *parents, last = path.split(".")
    node = payload
    for part in parents:
        node = node[part]
    del node[last]
    return payload


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body is empty; expected a JSON object"),
        (b"event=subscription-stopped", "body is not valid JSON"),
        (b"\xff\xfe{}", "body is not UTF-8"),
        (b"[1, 2]", "body must be a JSON object, not an array"),
        (b'"text"', "body must be a JSON object, not a string"),
        (b"42", "body must be a JSON object, not a number"),
        (b"{}", "event is missing"),
        (json.dumps(_without("data")).encode(), "data is missing"),
        (json.dumps(_without("data.member")).encode(), "data.member is missing"),
        (json.dumps(_without("data.member.email")).encode(), "data.member.email is missing"),
        (
            json.dumps(payloads.memberpress(email="not-an-address")).encode(),
            "data.member.email is not an email address",
        ),
        (
            json.dumps(payloads.memberpress(email="a@b.com\r\nBcc: x@evil.test")).encode(),
            "data.member.email must be a single line",
        ),
        (
            json.dumps({**payloads.memberpress(), "data": [1]}).encode(),
            "data must be an object, not an array",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "body is nested too deeply"),
    ],
)
def test_malformed_bodies_raise_a_message_naming_the_problem(body, message):
    with pytest.raises(PayloadError) as info:
        memberpress.parse(body)
    assert str(info.value).startswith(message)
