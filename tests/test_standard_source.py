"""Standard Webhooks: signatures made and checked by the official `standardwebhooks`
package, our documented schema, and the email at the end of it."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import standardwebhooks

from hooks import create_app
from hooks.sources import AuthError, Ignored, PayloadError
from hooks.sources import standard as source
from tests import payloads
from tests import source_payloads as sp
from tests.conftest import json_of
from tests.fixtures_sources import STANDARD_SECRET, standard_headers
from worker.events import Event, EventKind
from worker.settings import Settings, SettingsError


def parse(payload) -> Event | Ignored:
    return source.parse(payloads.body(payload))


# --- signatures (pure) --------------------------------------------------------------------


def test_our_signature_verifies_with_the_official_library():
    payload = payloads.body(sp.standard())
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": source.sign("msg_1", now, payload, STANDARD_SECRET),
    }
    assert standardwebhooks.Webhook(STANDARD_SECRET).verify(payload, headers)["type"] == (
        "membership.cancelled"
    )


def test_the_official_signature_verifies_here():
    payload = payloads.body(sp.standard())
    source.verify(standard_headers(payload), payload, STANDARD_SECRET)


def test_any_of_several_signatures_may_match_and_other_versions_are_skipped():
    payload = payloads.body(sp.standard())
    headers = standard_headers(payload)
    rotated = standard_headers(payload, secret="whsec_" + "b2xkLXNlY3JldC1vbGQ=")
    headers["webhook-signature"] = " ".join(
        ["v1a,c29tZXRoaW5nZWxzZQ==", rotated["webhook-signature"], headers["webhook-signature"]]
    )
    source.verify(headers, payload, STANDARD_SECRET)


@pytest.mark.parametrize("age", [301, -301])
def test_a_timestamp_outside_five_minutes_is_refused(age):
    payload = payloads.body(sp.standard())
    now = 1_800_000_000
    headers = standard_headers(payload, timestamp=now - age)
    with pytest.raises(AuthError, match="tolerance 300"):
        source.verify(headers, payload, STANDARD_SECRET, now=now)
    source.verify(headers, payload, STANDARD_SECRET, now=now - age)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_header_is_required(missing):
    payload = payloads.body(sp.standard())
    headers = standard_headers(payload)
    del headers[missing]
    with pytest.raises(AuthError, match=f"missing {missing}"):
        source.verify(headers, payload, STANDARD_SECRET)


def test_the_message_id_is_signed():
    payload = payloads.body(sp.standard())
    headers = standard_headers(payload, msg_id="msg_a")
    headers["webhook-id"] = "msg_b"
    with pytest.raises(AuthError, match="no v1 signature matches"):
        source.verify(headers, payload, STANDARD_SECRET)


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not base64!", "plain-password"])
def test_a_malformed_secret_is_a_settings_error(secret):
    with pytest.raises(SettingsError, match="FAREWELL_STANDARD_SECRET"):
        Settings.from_env({"FAREWELL_STANDARD_SECRET": secret})


def test_an_unpadded_secret_is_accepted_like_the_official_library_does():
    unpadded = STANDARD_SECRET.rstrip("=")
    Settings.from_env({"FAREWELL_STANDARD_SECRET": unpadded})
    payload = payloads.body(sp.standard())
    source.verify(standard_headers(payload, secret=unpadded), payload, unpadded)


# --- parsing (pure) -----------------------------------------------------------------------


def test_membership_cancelled_is_a_cancellation_with_every_field():
    event = parse(sp.standard(timestamp="2024-05-02T10:30:00Z"))
    assert isinstance(event, Event)
    assert event.source == "standard"
    assert event.kind is EventKind.CANCELLED
    assert event.name == "membership.cancelled"
    assert event.member.email == "sam.okafor@example.com"
    assert (event.member.id, event.member.first_name, event.member.last_name) == (
        "91",
        "Sam",
        "Okafor",
    )
    assert event.member.locale == "en"
    assert (event.membership.id, event.membership.title) == ("3", "Premium")
    assert event.subscription_id == "rcp-91"
    assert event.occurred_at == datetime(2024, 5, 2, 10, 30, tzinfo=UTC)
    assert event.access_ends_at == datetime(2030, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("membership.resumed", EventKind.RESUMED),
        ("membership.reactivated", EventKind.REACTIVATED),
        ("membership.expired", EventKind.EXPIRED),
        ("membership.paused", EventKind.PAUSED),
        ("member.erased", EventKind.ERASED),
    ],
)
def test_the_other_types_are_parsed_into_their_kinds(event_type, kind):
    assert parse(sp.standard(event_type, status="active")).kind is kind


def test_unknown_types_are_ignored_naming_the_known_ones():
    result = parse(sp.standard("membership.upgraded"))
    assert isinstance(result, Ignored)
    assert "membership.cancelled" in result.reason


def test_optional_fields_may_be_left_out():
    payload = {"type": "membership.cancelled", "data": {"member": {"email": "a@example.com"}}}
    event = parse(payload)
    assert event.membership is None
    assert event.access_ends_at is None
    assert event.occurred_at.tzinfo is not None


def test_odd_optional_fields_are_read_as_absent():
    data = {"member": {"email": "a@example.com"}, "access_ends_at": "next week"}
    data["membership"] = {"title": "X"}
    event = parse({"type": "membership.cancelled", "data": data})
    assert (event.access_ends_at, event.membership) == (None, None)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"data": {}}, "type is missing"),
        ({"type": "membership.cancelled"}, "data is missing"),
        ({"type": "membership.cancelled", "data": {}}, "data.member is missing"),
        (
            {"type": "membership.cancelled", "data": {"member": {"email": "nope"}}},
            "data.member.email is not an email",
        ),
    ],
)
def test_malformed_payloads_say_what_is_wrong(payload, message):
    with pytest.raises(PayloadError, match=message):
        parse(payload)


# --- over HTTP ----------------------------------------------------------------------------


def test_a_cancellation_sends_one_feedback_request(post_source, work, outbox):
    response = post_source.standard(sp.standard())
    assert response.status_code == 202
    work()
    [message] = outbox()
    assert message["To"].addresses[0].addr_spec == "sam.okafor@example.com"
    assert "Premium" in message.get_body(preferencelist=("plain",)).get_content()


def test_a_retry_with_a_new_message_id_is_still_a_duplicate(post_source, work, outbox):
    data = payloads.body(sp.standard())
    first = post_source.standard(None, raw=data, headers=standard_headers(data, msg_id="msg_1"))
    again = post_source.standard(None, raw=data, headers=standard_headers(data, msg_id="msg_2"))
    assert first.status_code == 202
    assert json_of(again) == {"status": "duplicate", "event_id": json_of(first)["event_id"]}
    work()
    assert len(outbox()) == 1


def test_a_reactivation_stops_the_follow_up(post_source, clock, outbox, runtime):
    seq_id = json_of(post_source.standard(sp.standard()))["event_id"]
    clock.advance(seconds=0)
    assert clock.scheduled() == [f"step-{seq_id}-winback"]
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    back = sp.standard("membership.reactivated", status="active", timestamp=later)
    assert post_source.standard(back).status_code == 202
    clock.advance(seconds=0)
    assert clock.scheduled() == []
    assert runtime.store.load_sequence(seq_id).outcome == "came_back"
    clock.advance(days=30)
    assert len(outbox()) == 1


def test_a_comeback_is_recorded(post_source, work, runtime):
    response = post_source.standard(sp.standard("membership.reactivated", status="active"))
    work()
    event = runtime.store.load_event(json_of(response)["event_id"])
    assert runtime.store.member_field(event.member.key, "last_event") == "reactivated"


def test_wrong_signature_is_401(post_source):
    data = payloads.body(sp.standard())
    headers = standard_headers(data, secret="whsec_" + "c29tZW9uZS1lbHNl")
    assert post_source.standard(None, raw=data, headers=headers).status_code == 401


def test_a_stale_delivery_is_401(post_source):
    data = payloads.body(sp.standard())
    headers = standard_headers(data, timestamp=int(time.time()) - 301)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(STANDARD_SECRET).verify(data, headers)
    response = post_source.standard(None, raw=data, headers=headers)
    assert response.status_code == 401
    assert "tolerance" in json_of(response)["error"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "body is empty"),
        (b"null", "not null"),
        (payloads.body({"type": "membership.cancelled", "data": []}), "data must be an object"),
    ],
)
def test_malformed_signed_bodies_are_400_with_a_message(post_source, raw, message):
    response = post_source.standard(None, raw=raw, headers=standard_headers(raw))
    assert response.status_code == 400
    assert message in json_of(response)["error"]


def test_disabled_without_a_secret(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, standard_secret="")})
    data = payloads.body(sp.standard())
    response = app.test_client().post("/hooks/standard", data=data, headers=standard_headers(data))
    assert response.status_code == 404
