"""WooCommerce Subscriptions: signature, topics, the activation ping, one cancellation for
pending-cancel + cancelled, and the email at the end of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hooks import create_app
from hooks.sources import Ignored, PayloadError, woocommerce
from tests import payloads, source_payloads
from tests.conftest import json_of
from tests.fixtures_sources import woocommerce_headers
from worker.events import Event, EventKind


def parse(payload, topic="subscription.updated") -> Event | Ignored:
    return woocommerce.parse(payloads.body(payload), {"X-WC-Webhook-Topic": topic})


# --- parsing (pure) -----------------------------------------------------------------------


def test_pending_cancel_is_a_cancellation_with_billing_details_and_access_end():
    payload = source_payloads.woocommerce(
        status="pending-cancel", modified_gmt="2024-05-02T10:30:00"
    )
    event = parse(payload)
    assert isinstance(event, Event)
    assert event.source == "woocommerce"
    assert event.kind is EventKind.CANCELLED
    assert event.name == "subscription.updated"
    assert event.member.email == "maria.silva@example.com"
    assert (event.member.first_name, event.member.last_name) == ("Maria", "Silva")
    assert event.member.id == "12"
    assert event.member.locale is None  # WooCommerce says nothing about language
    assert event.membership is not None
    assert (event.membership.id, event.membership.title) == ("77", "Gold Club (monthly)")
    assert event.subscription_id == "4711"
    assert event.occurred_at == datetime(2024, 5, 2, 10, 30, tzinfo=UTC)
    assert event.access_ends_at == datetime(2030, 6, 1, 10, 0, tzinfo=UTC)
    assert event.status == "cancelled"  # the state (worker/subscription_state.py)
    assert event.raw["payment_method"] == "stripe"


def test_pending_cancel_and_cancelled_are_one_cancellation():
    pending = parse(source_payloads.woocommerce(status="pending-cancel"))
    # Weeks later: modified again, the cancelled date WooCommerce stamped at pending-cancel kept.
    final = source_payloads.woocommerce(status="cancelled", modified_gmt="2030-06-01T10:00:02")
    final["cancelled_date_gmt"] = pending.raw["cancelled_date_gmt"]
    cancelled = parse(final)
    assert cancelled.kind is EventKind.CANCELLED
    assert pending.status == cancelled.status == "cancelled"  # one state: the second dedupes


def test_api_v1_dates_without_the_gmt_suffix_are_read_too():
    payload = source_payloads.woocommerce(status="cancelled")
    for name in ("cancelled_date", "end_date", "date_modified"):
        payload[name] = payload.pop(f"{name}_gmt")
    v1 = parse(payload)
    v3 = parse(
        {
            **source_payloads.woocommerce(status="pending-cancel"),
            **{"cancelled_date_gmt": payload["cancelled_date"]},
        }
    )
    assert (v1.status, v1.occurred_at) == (v3.status, v3.occurred_at)
    assert v1.access_ends_at == datetime(2030, 6, 1, 10, 0, tzinfo=UTC)


def test_another_subscription_is_another_cancellation():
    first = parse(source_payloads.woocommerce(subscription_id=1))
    second = parse(source_payloads.woocommerce(subscription_id=2))
    assert first.event_id != second.event_id


@pytest.mark.parametrize(
    ("topic", "status", "kind"),
    [
        ("subscription.updated", "active", EventKind.RESUMED),
        ("subscription.created", "pending", EventKind.OTHER),  # unpaid: not a comeback
        ("subscription.created", "pending-cancel", EventKind.CANCELLED),  # state at send time
        ("subscription.created", "active", EventKind.REACTIVATED),
        ("subscription.updated", "expired", EventKind.EXPIRED),
    ],
)
def test_comebacks_and_expiry_are_parsed_into_their_kinds(topic, status, kind):
    event = parse(source_payloads.woocommerce(status=status), topic)
    assert isinstance(event, Event)
    assert event.kind is kind
    assert event.kind.is_comeback is (kind in (EventKind.RESUMED, EventKind.REACTIVATED))


def test_a_signed_empty_array_is_ignored_with_a_reason():
    """A subscription created through the REST API v3 fires subscription.updated with []."""
    result = woocommerce.parse(b"[]", {"X-WC-Webhook-Topic": "subscription.updated"})
    assert isinstance(result, Ignored) and "[]" in result.reason


def test_wpml_language_gives_the_locale():
    meta = [{"id": 9, "key": "wpml_language", "value": "pt-br"}]
    event = parse(source_payloads.woocommerce(meta=meta))
    assert event.member.locale == "pt_BR"


@pytest.mark.parametrize(
    ("topic", "status"),
    [
        ("subscription.updated", "on-hold"),
        ("subscription.updated", "pending"),
        ("subscription.deleted", "cancelled"),
        ("order.created", "processing"),
    ],
)
def test_other_topics_and_statuses_are_ignored_with_a_reason(topic, status):
    result = parse(source_payloads.woocommerce(status=status), topic)
    assert isinstance(result, Ignored)
    assert (status in result.reason) or (topic in result.reason)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("billing"), "billing is missing"),
        (lambda p: p["billing"].pop("email"), "billing.email is missing"),
        (lambda p: p["billing"].update(email="not-an-address"), "billing.email is not an email"),
        (lambda p: p.pop("id"), "id is missing"),
    ],
)
def test_malformed_payloads_say_what_is_wrong(mutate, message):
    payload = source_payloads.woocommerce()
    mutate(payload)
    with pytest.raises(PayloadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(payload)


def test_missing_topic_header_is_a_payload_error():
    with pytest.raises(PayloadError, match="X-WC-Webhook-Topic"):
        woocommerce.parse(payloads.body(source_payloads.woocommerce()), {})


def test_our_signature_is_woocommerces():
    # base64(HMAC-SHA256(body, secret)) as WC_Webhook::generate_signature computes it,
    # for a body and secret whose signature was computed independently (openssl dgst).
    body = b'{"id":1}'
    assert woocommerce.sign(body, "s3cret") == "Y92rNNpYOOODVF6ckLQPdKTj2qvF3ZqNSaUYda1LJBg="


# --- over HTTP ----------------------------------------------------------------------------


def test_a_cancellation_sends_one_feedback_request(post_source, work, outbox):
    response = post_source.woocommerce(source_payloads.woocommerce())
    assert response.status_code == 202
    assert json_of(response)["status"] == "queued"
    work()
    [message] = outbox()
    assert message["To"].addresses[0].addr_spec == "maria.silva@example.com"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Maria" in text and "Gold Club (monthly)" in text


def test_repeated_updates_and_the_later_cancelled_status_send_nothing_more(
    post_source, work, outbox
):
    pending = source_payloads.woocommerce(status="pending-cancel")
    first = post_source.woocommerce(pending)
    # WooCommerce fires the same update again with a new delivery id...
    again = post_source.woocommerce(pending)
    # ...and weeks later the subscription moves on to cancelled, keeping its cancelled date.
    ended = {**pending, "status": "cancelled", "date_modified_gmt": "2030-06-01T10:00:02"}
    final = post_source.woocommerce(ended)
    assert first.status_code == 202
    assert json_of(again) == {"status": "duplicate", "event_id": json_of(first)["event_id"]}
    assert json_of(final)["status"] == "duplicate"
    work()
    assert len(outbox()) == 1


def test_a_reactivation_stops_the_follow_up_and_cancels_the_win_back(
    post_source, clock, outbox, runtime
):
    cancel = post_source.woocommerce(source_payloads.woocommerce(status="pending-cancel"))
    seq_id = json_of(cancel)["event_id"]
    clock.advance(seconds=0)
    assert clock.scheduled() == [f"step-{seq_id}-winback"]
    later = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    back = source_payloads.woocommerce(status="active", modified_gmt=later)
    assert post_source.woocommerce(back).status_code == 202
    clock.advance(seconds=0)
    assert clock.scheduled() == []
    assert runtime.store.load_sequence(seq_id).outcome == "came_back"
    clock.advance(days=30)
    assert len(outbox()) == 1  # the feedback request only


def test_a_comeback_is_recorded_for_the_member(post_source, work, runtime):
    response = post_source.woocommerce(source_payloads.woocommerce(status="active"))
    assert response.status_code == 202
    work()
    event = runtime.store.load_event(json_of(response)["event_id"])
    assert event.kind is EventKind.RESUMED
    assert runtime.store.member_field(event.member.key, "last_event") == "resumed"


def test_the_activation_ping_gets_200_and_is_recorded(client, runtime):
    response = client.post(
        "/hooks/woocommerce",
        data=b"webhook_id=5",
        content_type="application/x-www-form-urlencoded",
        headers={"User-Agent": "WooCommerce/8.9.1 Hookshot (WordPress/6.5.3)"},
    )
    assert response.status_code == 200
    assert json_of(response) == {"status": "ping"}
    assert runtime.store.last_ping("woocommerce")["detail"] == "webhook_id=5"


def test_a_ping_shaped_body_with_a_bad_signature_is_not_a_ping(client):
    response = client.post(
        "/hooks/woocommerce",
        data=b"webhook_id=5",
        headers={"X-WC-Webhook-Signature": "bm9wZQ==", "X-WC-Webhook-Topic": "action.wc"},
    )
    assert response.status_code == 401


def test_an_unsigned_json_body_is_not_a_ping(post_source):
    response = post_source.woocommerce(None, raw=payloads.body({"webhook_id": 5}), headers={})
    assert response.status_code == 401
    assert "X-WC-Webhook-Signature" in json_of(response)["error"]


def test_wrong_signature_is_401(post_source):
    data = payloads.body(source_payloads.woocommerce())
    headers = woocommerce_headers(data, "subscription.updated", secret="not-the-secret")
    response = post_source.woocommerce(None, raw=data, headers=headers)
    assert response.status_code == 401


def test_a_body_changed_after_signing_is_401(post_source):
    data = payloads.body(source_payloads.woocommerce())
    headers = woocommerce_headers(data, "subscription.updated")
    tampered = data.replace(b"maria.silva@", b"mallory@")
    assert post_source.woocommerce(None, raw=tampered, headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "body is empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (payloads.body({"id": 1, "status": "cancelled"}), "billing is missing"),
    ],
)
def test_malformed_signed_bodies_get_200_with_the_reason(post_source, runtime, raw, message):
    """WooCommerce disables a webhook after 5 non-2xx replies in a row: never a 4xx."""
    headers = woocommerce_headers(raw, "subscription.updated")
    response = post_source.woocommerce(None, raw=raw, headers=headers)
    assert response.status_code == 200
    assert json_of(response)["status"] == "invalid"
    assert message in json_of(response)["reason"]
    assert runtime.store.pending_count() == 0


def test_ignored_topics_get_200_ignored(post_source):
    response = post_source.woocommerce(source_payloads.woocommerce(), topic="order.updated")
    assert response.status_code == 200
    assert json_of(response)["status"] == "ignored"


def test_disabled_without_a_secret(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, woocommerce_secret="")})
    data = payloads.body(source_payloads.woocommerce())
    response = app.test_client().post(
        "/hooks/woocommerce", data=data, headers=woocommerce_headers(data, "subscription.updated")
    )
    assert response.status_code == 404
    ping = app.test_client().post("/hooks/woocommerce", data=b"webhook_id=5")
    assert ping.status_code == 404
