"""Providers' bounce and complaint webhooks feed the suppression list: each is disabled
without its secret, checks the provider's credentials or signature, and suppresses only
hard bounces and spam complaints."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from redis.exceptions import ConnectionError as RedisConnectionError

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


def _mailgun(
    event: dict,
    key: str = MAILGUN_SIGNING_KEY,
    *,
    timestamp: str | None = None,
    token: str | None = None,
) -> dict:
    """A Mailgun post as Mailgun signs it: now, with a fresh token (each used once)."""
    timestamp = timestamp or str(int(time.time()))
    token = token or secrets.token_hex(25)
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


def test_a_replayed_mailgun_signature_is_refused(hooks_client, runtime):
    """The signature covers timestamp + token only: a captured one must not sign other
    bodies, nor the same body again."""
    seen = _mailgun({"event": "failed", "severity": "temporary", "recipient": "a@example.com"})
    assert hooks_client.post("/hooks/mailgun-events", json=seen).status_code == 200
    forged = {**seen, "event-data": {"event": "complained", "recipient": "victim@example.com"}}
    response = hooks_client.post("/hooks/mailgun-events", json=forged)
    assert response.status_code == 401
    assert "already used" in json_of(response)["error"]
    assert hooks_client.post("/hooks/mailgun-events", json=seen).status_code == 401
    assert not runtime.store.is_suppressed("victim@example.com")


@pytest.mark.parametrize(
    ("timestamp", "words"),
    [
        ("1000000000", "s from now"),  # 2001
        (str(int(time.time()) - 301), "s from now"),
        (str(int(time.time()) + 400), "s from now"),
        ("9" * 5000, "Unix seconds"),  # past Python's int-from-string limit
        ("²", "Unix seconds"),
    ],
    ids=["2001", "301 s old", "400 s ahead", "5000 digits", "superscript two"],
)
def test_a_stale_or_malformed_mailgun_timestamp_is_refused(hooks_client, runtime, timestamp, words):
    event = {"event": "complained", "recipient": "victim@example.com"}
    response = hooks_client.post("/hooks/mailgun-events", json=_mailgun(event, timestamp=timestamp))
    assert response.status_code == 401
    assert words in json_of(response)["error"]
    assert not runtime.store.is_suppressed("victim@example.com")


def test_mailgun_tokens_are_remembered_longer_than_a_timestamp_stays_fresh(hooks_client, runtime):
    from hooks.bounce_parsers import MAILGUN_TOLERANCE
    from hooks.replay import token_key

    body = _mailgun({"event": "complained", "recipient": "b@example.com"}, token="t0k3n")
    assert hooks_client.post("/hooks/mailgun-events", json=body).status_code == 200
    assert runtime.store.redis.ttl(token_key("mailgun-events", "t0k3n")) > MAILGUN_TOLERANCE


def test_a_mailgun_post_that_met_a_redis_outage_passes_when_retried(settings, own_redis):
    """The token of a 503 is released: Mailgun's retry carries the same one."""
    app = create_app(
        {
            "TESTING": True,
            "SETTINGS": replace(
                settings, redis_url=own_redis.url, mailgun_webhook_signing_key=MAILGUN_SIGNING_KEY
            ),
        }
    )
    client = app.test_client()
    store = app.extensions["farewell"].store
    body = _mailgun({"event": "complained", "recipient": "b@example.com"})
    real_suppress = store.suppress

    def failing(*args):
        raise RedisConnectionError("connection lost")

    store.suppress = failing
    assert client.post("/hooks/mailgun-events", json=body).status_code == 503
    store.suppress = real_suppress
    assert client.post("/hooks/mailgun-events", json=body).status_code == 200
    assert store.is_suppressed("b@example.com")


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
