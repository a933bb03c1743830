"""Providers' bounce and complaint webhooks feed the suppression list: each is disabled
without its secret, checks the provider's credentials or signature, and suppresses only
hard bounces and spam complaints."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hooks import create_app
from tests.conftest import json_of

POSTMARK_KEY = "pm-webhook-key-1234"
MAILGUN_SIGNING_KEY = "mg-signing-key-abcd"
SENDGRID_PRIVATE = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


@pytest.fixture
def hooks_client(settings, runtime):
    configured = replace(
        settings,
        postmark_webhook_key=POSTMARK_KEY,
        mailgun_webhook_signing_key=MAILGUN_SIGNING_KEY,
        sendgrid_webhook_public_key=SENDGRID_PUBLIC,
    )
    return create_app({"TESTING": True, "SETTINGS": configured}).test_client()


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


POSTMARK_HARD_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 42,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "Tag": "feedback_request",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Description": "The server was unable to deliver your message.",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
    "Email": "jane.doe@example.com",
    "From": "ana@example.com",
    "BouncedAt": "2026-11-25T13:28:10.2735393-04:00",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "Thank you, Jane",
    "MessageStream": "outbound",
    "Metadata": {"sequence": "seq-1", "step": "feedback_request"},
}


def _mailgun(event: dict, key: str = MAILGUN_SIGNING_KEY) -> dict:
    timestamp, token = "1795640000", "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    }


def _sendgrid_post(client, events, *, private=SENDGRID_PRIVATE, tamper: bool = False):
    body = json.dumps(events).encode()
    timestamp = "1795640000"
    signature = private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    if tamper:
        body = body.replace(b"jane", b"john")
    return client.post(
        "/hooks/sendgrid-events",
        data=body,
        content_type="application/json",
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )


# --- disabled without a secret --------------------------------------------------------------


@pytest.mark.parametrize("path", ["postmark-bounce", "mailgun-events", "sendgrid-events"])
def test_each_endpoint_is_disabled_without_its_secret(client, path):
    response = client.post(f"/hooks/{path}", json={})
    assert response.status_code == 404
    assert "not enabled" in json_of(response)["error"]


# --- Postmark -------------------------------------------------------------------------------


def test_postmark_hard_bounce_suppresses_the_address(hooks_client, runtime):
    response = hooks_client.post(
        "/hooks/postmark-bounce",
        json=POSTMARK_HARD_BOUNCE,
        headers=_basic("postmark", POSTMARK_KEY),
    )
    assert response.status_code == 200
    assert json_of(response) == {"status": "recorded", "suppressed": 1, "seen": 1}
    assert runtime.store.suppression("jane.doe@example.com").reason == "bounced"


def test_postmark_key_may_come_in_the_query(hooks_client, runtime):
    complaint = {
        "RecordType": "SpamComplaint",
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Email": "Jane.Doe@example.com",
    }
    response = hooks_client.post(f"/hooks/postmark-bounce?key={POSTMARK_KEY}", json=complaint)
    assert response.status_code == 200
    assert runtime.store.suppression("jane.doe@example.com").reason == "complained"


@pytest.mark.parametrize(
    "headers, query",
    [({}, ""), (_basic("postmark", "wrong"), ""), ({}, "?key=wrong")],
)
def test_postmark_wrong_or_missing_credentials_are_401(hooks_client, runtime, headers, query):
    response = hooks_client.post(
        f"/hooks/postmark-bounce{query}", json=POSTMARK_HARD_BOUNCE, headers=headers
    )
    assert response.status_code == 401
    assert not runtime.store.is_suppressed("jane.doe@example.com")


def test_postmark_soft_bounce_is_ignored(hooks_client, runtime):
    soft = {**POSTMARK_HARD_BOUNCE, "Type": "SoftBounce", "TypeCode": 4096, "Inactive": False}
    response = hooks_client.post(f"/hooks/postmark-bounce?key={POSTMARK_KEY}", json=soft)
    assert response.status_code == 200 and json_of(response)["status"] == "ignored"
    assert not runtime.store.is_suppressed("jane.doe@example.com")


def test_postmark_malformed_body_is_400(hooks_client):
    response = hooks_client.post(
        f"/hooks/postmark-bounce?key={POSTMARK_KEY}", data=b"{not json", content_type="text/plain"
    )
    assert response.status_code == 400 and json_of(response)["error"] == "body is not JSON"


# --- Mailgun --------------------------------------------------------------------------------


def test_mailgun_permanent_failure_suppresses(hooks_client, runtime):
    event = {
        "event": "failed",
        "severity": "permanent",
        "reason": "bounce",
        "recipient": "jane.doe@example.com",
        "delivery-status": {"code": 550, "message": "No such user"},
        "user-variables": {"sequence": "seq-1", "step": "feedback_request"},
    }
    response = hooks_client.post("/hooks/mailgun-events", json=_mailgun(event))
    assert response.status_code == 200 and json_of(response)["suppressed"] == 1
    assert runtime.store.suppression("jane.doe@example.com").reason == "bounced"


def test_mailgun_complaint_suppresses_and_temporary_failure_does_not(hooks_client, runtime):
    temporary = {"event": "failed", "severity": "temporary", "recipient": "a@example.com"}
    assert (
        json_of(hooks_client.post("/hooks/mailgun-events", json=_mailgun(temporary)))["status"]
        == "ignored"
    )
    complaint = {"event": "complained", "recipient": "b@example.com"}
    hooks_client.post("/hooks/mailgun-events", json=_mailgun(complaint))
    assert not runtime.store.is_suppressed("a@example.com")
    assert runtime.store.suppression("b@example.com").reason == "complained"


def test_mailgun_bad_signature_is_401(hooks_client, runtime):
    event = {"event": "complained", "recipient": "b@example.com"}
    response = hooks_client.post("/hooks/mailgun-events", json=_mailgun(event, key="other"))
    assert response.status_code == 401
    unsigned = hooks_client.post("/hooks/mailgun-events", json={"event-data": event})
    assert unsigned.status_code == 401
    assert not runtime.store.is_suppressed("b@example.com")


# --- SendGrid -------------------------------------------------------------------------------

SENDGRID_EVENTS = [
    {"email": "jane.doe@example.com", "event": "bounce", "type": "bounce", "reason": "550"},
    {"email": "blocked@example.com", "event": "bounce", "type": "blocked", "reason": "421"},
    {"email": "spam@example.com", "event": "spamreport", "sg_event_id": "x"},
    {"email": "old@example.com", "event": "dropped", "reason": "Bounced Address"},
    {"email": "seen@example.com", "event": "delivered"},
]


def test_sendgrid_signed_batch_suppresses_bounces_and_complaints(hooks_client, runtime):
    response = _sendgrid_post(hooks_client, SENDGRID_EVENTS)
    assert response.status_code == 200
    assert json_of(response) == {"status": "recorded", "suppressed": 3, "seen": 3}
    store = runtime.store
    assert store.suppression("jane.doe@example.com").reason == "bounced"
    assert store.suppression("spam@example.com").reason == "complained"
    assert store.suppression("old@example.com").reason == "bounced"
    assert not store.is_suppressed("blocked@example.com")
    assert not store.is_suppressed("seen@example.com")


def test_sendgrid_tampered_or_foreign_signature_is_401(hooks_client, runtime):
    assert _sendgrid_post(hooks_client, SENDGRID_EVENTS, tamper=True).status_code == 401
    other = ec.generate_private_key(ec.SECP256R1())
    assert _sendgrid_post(hooks_client, SENDGRID_EVENTS, private=other).status_code == 401
    unsigned = hooks_client.post("/hooks/sendgrid-events", json=SENDGRID_EVENTS)
    assert unsigned.status_code == 401
    assert not runtime.store.is_suppressed("jane.doe@example.com")


def test_a_suppressed_address_gets_no_more_email(hooks_client, post_hook, work, outbox):
    hooks_client.post(f"/hooks/postmark-bounce?key={POSTMARK_KEY}", json=POSTMARK_HARD_BOUNCE)
    post_hook.memberpress()
    work()
    assert outbox() == []


def test_sendgrid_batches_may_exceed_the_plugin_body_limit(hooks_client, runtime):
    events = [
        {"email": f"user{n}@example.com", "event": "delivered", "sg_event_id": "e" * 100}
        for n in range(2500)
    ]
    events.append({"email": "late@example.com", "event": "spamreport"})
    assert len(json.dumps(events)) > 256 * 1024
    response = _sendgrid_post(hooks_client, events)
    assert response.status_code == 200
    assert runtime.store.suppression("late@example.com").reason == "complained"
    huge = [{"email": "x@example.com", "event": "delivered", "pad": "p" * 1000}] * 2200
    assert _sendgrid_post(hooks_client, huge).status_code == 413
