"""Paid Memberships Pro (PMPro Zapier push): `?key=` auth, level 0 = cancellation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hooks import create_app
from hooks.sources import Ignored, PayloadError, pmpro
from tests import payloads, source_payloads
from tests.conftest import json_of, parts
from worker.events import Event, EventKind


def parse(payload) -> Event | Ignored:
    return pmpro.parse(payloads.body(payload))


def test_level_zero_with_an_old_status_is_a_cancellation():
    event = parse(source_payloads.pmpro_cancelled())
    assert isinstance(event, Event)
    assert event.source == "pmpro"
    assert event.kind is EventKind.CANCELLED
    assert event.member.email == "li.wei@example.com"
    assert event.member.id == "42"
    assert event.membership is None  # the push does not say which level was left
    assert event.status.startswith("cancelled@")
    assert event.raw["username"] == "li.wei"


@pytest.mark.parametrize("old_status", ["admin_cancelled", "expired", "inactive"])
def test_every_way_of_losing_the_level_is_a_cancellation(old_status):
    event = parse(source_payloads.pmpro_cancelled(old_level_status=old_status))
    assert event.kind is EventKind.CANCELLED


def test_level_zero_without_an_old_status_is_ignored():
    result = parse(source_payloads.pmpro_cancelled(old_level_status=""))
    assert isinstance(result, Ignored)
    assert "old_level_status" in result.reason


def test_getting_a_level_is_a_comeback_with_the_level():
    event = parse(source_payloads.pmpro_level(level_id="2"))
    assert event.kind is EventKind.REACTIVATED
    assert event.kind.is_comeback
    assert event.membership is not None
    assert (event.membership.id, event.membership.title) == ("2", "Silver")


def test_a_double_fire_is_one_event_and_another_member_is_another():
    first = parse(source_payloads.pmpro_cancelled())
    again = parse(source_payloads.pmpro_cancelled())
    other = parse(source_payloads.pmpro_cancelled(user_id=43, email="x@example.com"))
    assert first.event_id == again.event_id
    assert first.event_id != other.event_id


def test_the_same_member_cancelling_again_another_day_is_a_new_cancellation():
    day = datetime(2024, 5, 2, 23, 59, tzinfo=UTC)
    first = pmpro.from_payload(source_payloads.pmpro_cancelled(), day)
    same_day = pmpro.from_payload(source_payloads.pmpro_cancelled(), day - timedelta(hours=12))
    months_later = pmpro.from_payload(source_payloads.pmpro_cancelled(), day + timedelta(days=90))
    assert first.status == "cancelled@2024-05-02"
    assert first.occurred_at == day
    assert same_day.event_id == first.event_id
    assert months_later.event_id != first.event_id


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"user_id": 1, "user_email": "a@example.com"}, "level is missing"),
        ({"user_id": 1, "user_email": "a@example.com", "level": {}}, "level.ID is missing"),
        ({"user_id": 1, "level": {"ID": "0"}, "old_level_status": "cancelled"}, "user_email"),
        ({"user_email": "a@example.com", "level": {"ID": "0"}, "old_level_status": "x"}, "user_id"),
        ({"user_id": 1, "user_email": "a@example.com", "level": "0"}, "level must be an object"),
    ],
)
def test_malformed_payloads_say_what_is_wrong(payload, message):
    with pytest.raises(PayloadError, match=message):
        parse(payload)


# --- over HTTP ----------------------------------------------------------------------------


def test_a_cancellation_sends_one_feedback_request(post_source, work, outbox):
    response = post_source.pmpro(source_payloads.pmpro_cancelled())
    assert response.status_code == 202
    work()
    [message] = outbox()
    assert message["To"].addresses[0].addr_spec == "li.wei@example.com"
    # The push does not name the level: the email says "your membership", with no gap.
    text, html = parts(message)
    assert "Your membership has been cancelled" in text
    assert "Your membership has been cancelled" in html


def test_replay_of_the_same_push_is_a_duplicate(post_source, work, outbox):
    first = post_source.pmpro(source_payloads.pmpro_cancelled())
    second = post_source.pmpro(source_payloads.pmpro_cancelled())
    assert json_of(second) == {"status": "duplicate", "event_id": json_of(first)["event_id"]}
    work()
    assert len(outbox()) == 1


def test_getting_a_level_again_stops_the_follow_up(post_source, clock, outbox, runtime):
    seq_id = json_of(post_source.pmpro(source_payloads.pmpro_cancelled()))["event_id"]
    clock.advance(seconds=0)
    assert clock.scheduled() == [f"step-{seq_id}-winback"]
    assert post_source.pmpro(source_payloads.pmpro_level()).status_code == 202
    clock.advance(seconds=0)
    assert clock.scheduled() == []
    assert runtime.store.load_sequence(seq_id).outcome == "came_back"
    clock.advance(days=30)
    assert len(outbox()) == 1


def test_a_comeback_is_recorded(post_source, work, runtime):
    response = post_source.pmpro(source_payloads.pmpro_level())
    assert response.status_code == 202
    work()
    event = runtime.store.load_event(json_of(response)["event_id"])
    assert runtime.store.member_field(event.member.key, "last_event") == "reactivated"


@pytest.mark.parametrize("key", [None, "", "wrong-key"])
def test_missing_or_wrong_key_is_401(post_source, key):
    assert post_source.pmpro(source_payloads.pmpro_cancelled(), key=key).status_code == 401


def test_the_key_in_a_header_is_not_enough(client):
    # The add-on cannot send headers of our choosing; only the URL carries the key.
    response = client.post(
        "/hooks/pmpro",
        data=payloads.body(source_payloads.pmpro_cancelled()),
        headers={"MEMBERPRESS-WEBHOOK-KEY": "pmpro-key-Z8s1Lx0v"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"", "body is empty"), (b"user_id=1", "not valid JSON"), (b'"x"', "not a string")],
)
def test_malformed_bodies_are_400_with_a_message(post_source, raw, message):
    response = post_source.pmpro(None, raw=raw)
    assert response.status_code == 400
    assert message in json_of(response)["error"]


def test_disabled_without_a_key(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, pmpro_key="")})
    response = app.test_client().post(
        "/hooks/pmpro?key=", data=payloads.body(source_payloads.pmpro_cancelled())
    )
    assert response.status_code == 404
