"""Paid Memberships Pro (PMPro Zapier push): `?key=` auth, level 0 = cancellation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from hooks import create_app
from hooks.sources import Ignored, PayloadError, pmpro
from tests import payloads, plugin_payloads, source_payloads
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
    assert event.status == "none"  # the level held (worker/subscription_state.py)
    assert event.raw["username"] == "li.wei"


@pytest.mark.parametrize("old_status", ["admin_cancelled", "expired", "inactive"])
def test_every_way_of_losing_the_level_is_a_cancellation(old_status):
    event = parse(source_payloads.pmpro_cancelled(old_level_status=old_status))
    assert event.kind is EventKind.CANCELLED


def test_level_zero_is_a_cancellation_whatever_old_level_status_says():
    """The add-on reads old_level_status from the member's oldest row: not a reason."""
    for old_status in ("", "cancelled", "changed"):
        event = parse(source_payloads.pmpro_cancelled(old_level_status=old_status))
        assert event.kind is EventKind.CANCELLED and event.status == "none"


def test_getting_a_level_is_a_comeback_with_the_level():
    event = parse(source_payloads.pmpro_level(level_id="2"))
    assert event.kind is EventKind.REACTIVATED
    assert event.kind.is_comeback
    assert event.membership is not None
    assert (event.membership.id, event.membership.title) == ("2", "Silver")


def test_the_user_stands_in_for_the_subscription():
    day = datetime(2024, 5, 2, 23, 59, tzinfo=UTC)
    first = pmpro.from_payload(source_payloads.pmpro_cancelled(), day)
    other = pmpro.from_payload(source_payloads.pmpro_cancelled(user_id=43), day)
    assert (first.subscription_id, other.subscription_id) == ("user-42", "user-43")
    assert first.occurred_at == day


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"user_id": 1, "level": {"ID": "0"}, "old_level_status": "cancelled"}, "user_email"),
        ({"user_id": 1, "level": {"ID": "0"}, "user_email": "nope"}, "user_email"),
    ],
)
def test_malformed_payloads_say_what_is_wrong(payload, message):
    with pytest.raises(PayloadError, match=message):
        parse(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"user_id": 1, "user_email": "a@example.com"},
        {"user_id": 1, "user_email": "a@example.com", "level": {}},
        {"user_id": 1, "user_email": "a@example.com", "level": "0"},
        {"user_id": 1, "user_email": "a@example.com", "level": False},
    ],
)
def test_a_push_without_a_level_is_ignored_with_a_reason(payload):
    assert "level" in parse(payload).reason


def test_a_push_without_user_id_still_names_the_member():
    event = parse({"user_email": "a@example.com", "level": {"ID": "0"}})
    assert event.kind is EventKind.CANCELLED
    assert event.subscription_id == f"member-{event.member.key}"


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
    assert post_source.pmpro(source_payloads.pmpro_cancelled()).status_code == 202
    second = post_source.pmpro(source_payloads.pmpro_cancelled())
    assert json_of(second)["status"] == "duplicate"
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
def test_malformed_bodies_get_200_with_the_reason(post_source, raw, message):
    """The add-on ignores HTTP errors: a 4xx would only hide the reason."""
    response = post_source.pmpro(None, raw=raw)
    assert response.status_code == 200
    assert json_of(response)["status"] == "invalid"
    assert message in json_of(response)["reason"]


def test_disabled_without_a_key(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, pmpro_key="")})
    response = app.test_client().post(
        "/hooks/pmpro?key=", data=payloads.body(source_payloads.pmpro_cancelled())
    )
    assert response.status_code == 404


def _pushed(post_source, level_id: str, **billing: str) -> str:
    body = plugin_payloads.pmpro_push(level_id=level_id)
    body["level"].update(billing)
    response = post_source.pmpro(body)
    assert response.status_code in (200, 202), response.data
    return json_of(response).get("event_id", "")


def test_a_cancellation_has_the_mrr_of_the_level_the_member_last_got(post_source, clock, runtime):
    _pushed(post_source, "1")  # 12.00 every 1 Month, as the add-on sends it
    clock.advance(seconds=0)
    _pushed(post_source, "2", billing_amount="120.00", cycle_number="1", cycle_period="Year")
    clock.advance(seconds=0)
    cancelled = _pushed(post_source, "0")
    clock.advance(seconds=0)
    record = runtime.store.load_cancellation(cancelled)
    assert (str(record.mrr), record.currency) == ("10.00", "USD")


def test_a_cancellation_after_a_free_level_has_no_mrr(post_source, clock, runtime):
    _pushed(post_source, "1")
    clock.advance(seconds=0)
    _pushed(post_source, "3", billing_amount="0.00", cycle_number="0", cycle_period="")
    clock.advance(seconds=0)
    cancelled = _pushed(post_source, "0")
    clock.advance(seconds=0)
    assert runtime.store.load_cancellation(cancelled).mrr is None


def test_without_an_earlier_level_push_the_mrr_stays_unknown(post_source, clock, runtime):
    cancelled = _pushed(post_source, "0")
    clock.advance(seconds=0)
    assert runtime.store.load_cancellation(cancelled).mrr is None
