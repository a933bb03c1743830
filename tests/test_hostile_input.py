"""Hostile and random bodies against POST /hooks/memberpress, then every POST endpoint:
never a 500, always a clear reason (200 "invalid" once a plugin source authenticated it:
MemberPress drops a delivery on any reply), a 2xx for a usable event, and nothing stored
for what is not used."""

from __future__ import annotations

import base64
import io
import json
import re
import string
import time
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hooks import create_app
from tests import payloads, source_payloads
from tests.conftest import MEMBERPRESS_KEY, json_of, stored_keys
from tests.generated import examples
from worker.events import member_key

HEADERS = {"MEMBERPRESS-WEBHOOK-KEY": MEMBERPRESS_KEY}


def _member(**fields):
    body = payloads.memberpress()
    body["data"]["member"].update(fields)
    return json.dumps(body).encode()


HOSTILE = [
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("deep objects", b'{"a":' * 40_000 + b"1" + b"}" * 40_000, "nested too deeply"),
    ("invalid UTF-8", b'{"event": "\xff\xfe subscription-stopped"}', "not UTF-8"),
    ("lone surrogate escape is fine JSON but no event", b'{"x": "\\ud800"}', "event is missing"),
    ("JSON array", b"[1, 2, 3]", "must be a JSON object, not an array"),
    ("JSON string", b'"subscription-stopped"', "must be a JSON object, not a string"),
    ("JSON number", b"42", "must be a JSON object, not a number"),
    ("JSON null", b"null", "must be a JSON object, not null"),
    ("empty body", b"", "body is empty"),
    ("NaN", b'{"event": NaN}', "event must be a string"),
    ("number as event", b'{"event": 7}', "not one Farewell acts on"),
    ("data not an object", b'{"event": "subscription-stopped", "data": [1]}', "data must be"),
    ("email as number", _member(email=12345), "not an email address"),
    ("email as list", _member(email=["a@example.com"]), "must be a string"),
    ("email as object", _member(email={"a": 1}), "must be a string"),
    ("email as bool", _member(email=True), "must be a string"),
    ("CRLF in email", _member(email="jane@example.com\r\nBcc: x@evil.example"), "single line"),
    ("two addresses", _member(email="jane@example.com, bob@example.com"), "not an email"),
    ("display-name form", _member(email="Jane <jane@example.com>"), "not an email"),
    ("no domain", _member(email="jane@"), "not an email"),
    ("no local part", _member(email="@example.com"), "not an email"),
    ("no dot in domain", _member(email="jane@localhost"), "not an email"),
    ("no at sign", _member(email="jane.example.com"), "not an email"),
    ("spaces", _member(email="jane doe@example.com"), "not an email"),
]
# Optional fields: read as absent (an oddity, logged and counted), the cancellation kept.
ODD_BUT_USABLE = [
    ("first name as object", _member(first_name={"x": 1}), "must be a string"),
    ("first name as float", _member(first_name=1.5), "must be a string"),
    ("CRLF in first name", _member(first_name="Jane\r\nBcc: all@evil.example"), "single line"),
    ("LF in last name", _member(last_name="Doe\nX-Spam: yes"), "single line"),
    ("NUL in first name", _member(first_name="Ja\x00ne"), "single line"),
    ("huge first name", _member(first_name="J" * 10_000), "longer than 200"),
]


@pytest.mark.parametrize(("raw", "message"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_get_a_clear_reason_and_store_nothing(client, runtime, raw, message):
    response = client.post("/hooks/memberpress", data=raw, headers=HEADERS)
    if "not one Farewell acts on" in message:
        assert response.status_code == 200 and json_of(response)["status"] == "ignored"
    else:
        assert response.status_code == 200, response.data[:200]
        assert json_of(response)["status"] == "invalid"
        assert message in json_of(response)["reason"]
    assert stored_keys(runtime.store.redis) == []
    assert len(runtime.queue) == 0


@pytest.mark.parametrize(
    ("raw", "message"), [h[1:] for h in ODD_BUT_USABLE], ids=[h[0] for h in ODD_BUT_USABLE]
)
def test_odd_optional_fields_are_read_as_absent_and_counted(client, runtime, raw, message):
    response = client.post("/hooks/memberpress", data=raw, headers=HEADERS)
    assert response.status_code == 202, response.data[:200]
    event = runtime.store.load_event(json_of(response)["event_id"])
    for text in (event.member.first_name, event.member.last_name):
        assert not any(ch in text for ch in "\r\n\x00") and len(text) <= 200
    counters = runtime.store.counters()
    assert any(name == "farewell_payload_oddities_total" for name, _ in counters)


def test_a_huge_body_is_413_and_nothing_is_stored(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, max_body_bytes=4096)})
    response = app.test_client().post(
        "/hooks/memberpress", data=b'{"event": "' + b"x" * 5_000_000 + b'"}', headers=HEADERS
    )
    assert response.status_code == 413
    assert "larger than 4096 bytes" in json_of(response)["error"]
    assert stored_keys(runtime.store.redis) == []


LIMIT = 4096
# What gunicorn gives the app for `Transfer-Encoding: chunked`: no Content-Length, and a
# stream the server ends itself.
CHUNKED = {"wsgi.input_terminated": True}


def _chunked_post(client, path: str, body: bytes, headers: dict[str, str], content_type: str):
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        content_type=content_type,
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides=CHUNKED,
    )


def _padded_cancellation(size: int) -> bytes:
    body = payloads.body(payloads.memberpress(member_id=77, subscription_id="770"))
    return body + b" " * (size - len(body))


@pytest.fixture
def small_app(settings, runtime):
    return create_app(
        {
            "TESTING": True,
            "SETTINGS": replace(settings, max_body_bytes=LIMIT, postmark_webhook_key="pm-key-1"),
        }
    )


def test_a_chunked_body_of_exactly_the_limit_is_accepted(small_app, runtime):
    body = _padded_cancellation(LIMIT)
    response = _chunked_post(
        small_app.test_client(), "/hooks/memberpress", body, HEADERS, "application/json"
    )
    assert response.status_code == 202, response.get_data()


@pytest.mark.parametrize("junk", [1, 16 * 1024, 600 * 1024])
def test_a_chunked_body_over_the_limit_is_413_and_nothing_is_stored(small_app, runtime, junk):
    # A valid cancellation up to the limit, then junk: never cut short and accepted.
    body = _padded_cancellation(LIMIT) + b"x" * junk
    response = _chunked_post(
        small_app.test_client(), "/hooks/memberpress", body, HEADERS, "application/json"
    )
    assert response.status_code == 413
    assert "larger than 4096 bytes" in json_of(response)["error"]
    assert stored_keys(runtime.store.redis) == []


def test_a_chunked_bounce_body_over_the_limit_is_413(small_app, runtime):
    bounce = json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "Email": "a@b.co"})
    body = bounce.encode() + b" " * (LIMIT + 100)
    response = _chunked_post(
        small_app.test_client(),
        "/hooks/postmark-bounce?key=pm-key-1",
        body,
        {},
        "application/json",
    )
    assert response.status_code == 413
    assert stored_keys(runtime.store.redis) == []


def test_a_chunked_form_over_the_limit_is_413(small_app):
    # Forms (one-click unsubscribe, feedback, admin) are read through the same limit.
    body = b"List-Unsubscribe=One-Click&pad=" + b"x" * LIMIT
    response = _chunked_post(
        small_app.test_client(),
        "/unsubscribe/not-a-token",
        body,
        {},
        "application/x-www-form-urlencoded",
    )
    assert response.status_code == 413


def test_a_name_with_markup_and_unicode_is_stored_as_plain_text(client, runtime):
    name = "<script>alert(1)</script> Zoë 🌙"
    response = client.post("/hooks/memberpress", data=_member(first_name=name), headers=HEADERS)
    assert response.status_code == 202
    event = runtime.store.load_event(json_of(response)["event_id"])
    assert event.member.first_name == name  # escaped where it is shown, never rewritten


# --- random payloads (see tests/generated.py for how many) ------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = (
    json_values
    | st.emails().map(str)
    | st.sampled_from(["", " ", "a@b.co", "x\r\ny", "jane@example.com", "0", "128"])
)
events = st.sampled_from(
    [
        "subscription-stopped",
        "subscription-expired",
        "subscription-paused",
        "subscription-resumed",
        "subscription-created",
        "member-deleted",
        "transaction-completed",
    ]
) | st.text(max_size=20)


@st.composite
def memberpress_like(draw):
    """The MemberPress shape with any field replaced by anything."""
    body = payloads.memberpress(subscription_id=str(draw(st.integers(0, 10**6))))
    body["event"] = draw(events)
    for field in ("email", "first_name", "last_name", "id", "locale"):
        if draw(st.booleans()):
            body["data"]["member"][field] = draw(field_values)
    for path in (("data", "id"), ("data", "status"), ("data", "membership", "id")):
        if draw(st.integers(0, 3)) == 0:
            target = body
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = draw(field_values)
    if draw(st.integers(0, 5)) == 0:
        body["data"][draw(st.sampled_from(["member", "membership"]))] = draw(json_values)
    if draw(st.integers(0, 8)) == 0:
        body["data"] = draw(json_values)
    return json.dumps(body).encode()


bodies = (
    memberpress_like() | json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=300)
)


@pytest.fixture
def unlimited_client(settings, runtime):
    # Thousands of requests from one address in seconds is exactly what the rate limit refuses.
    return create_app(
        {"TESTING": True, "SETTINGS": replace(settings, rate_limit="0")}
    ).test_client()


@pytest.mark.slow
@settings(max_examples=examples(1_000), deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=bodies)
def test_random_bodies_never_break_the_receiver(unlimited_client, runtime, raw):
    redis = runtime.store.redis
    before = set(stored_keys(redis))
    response = unlimited_client.post("/hooks/memberpress", data=raw, headers=HEADERS)
    assert response.status_code in (200, 202), (response.status_code, raw[:200])
    body = json_of(response)
    if body["status"] == "invalid":
        assert body["reason"]
        assert set(stored_keys(redis)) == before
    elif response.status_code == 202:
        event = runtime.store.load_event(body["event_id"])
        for text in (event.member.email, event.member.first_name, event.member.last_name):
            assert "\r" not in text and "\n" not in text
        assert "@" in event.member.email and member_key(event.member.email)
    if len(before) > 200:  # keep the keyspace each example scans small
        redis.flushdb()


# --- every POST endpoint, whatever lands later ----------------------------------------------

BOUNCE_KEYS = {
    "postmark_webhook_key": "hostile-postmark-key-0001",
    "mailgun_webhook_signing_key": "hostile-mailgun-key-0002",
}
SENDGRID_PRIVATE = ec.generate_private_key(ec.SECP256R1())
ADMIN_PASSWORD = "hostile-admin-password-0003"


@pytest.fixture
def every_source_client(settings, runtime):
    """An app with every registered source, bounce endpoint and the admin switched on."""
    from hooks.sources import SOURCES

    secrets = {
        m.SECRET_SETTING: f"hostile-test-secret-{n:04d}" for n, m in enumerate(SOURCES.values())
    }
    # A Standard Webhooks secret is whsec_<base64>; Farewell refuses to start with another.
    secrets["standard_secret"] = (
        "whsec_" + base64.b64encode(b"hostile-test-secret-24bytes").decode()
    )
    public = SENDGRID_PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hostile = replace(
        settings,
        rate_limit="0",
        admin_password=ADMIN_PASSWORD,
        sendgrid_webhook_public_key=base64.b64encode(public).decode(),
        **BOUNCE_KEYS,
        **secrets,
    )
    hostile.validate()  # only settings Farewell would start with
    app = create_app({"TESTING": True, "SETTINGS": hostile})
    return app.test_client(), sorted(SOURCES)


def _sendgrid_signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = SENDGRID_PRIVATE.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


DEEP = b"[" * 100_000
HUGE_NUMBER = "9" * 5_000
# What a hostile review sent before and after authentication: each once broke a request
# with a 500 and a traceback.
ATTACKS = [
    ("stripe", "Stripe-Signature: t=²", {"Stripe-Signature": "t=²,v1=00"}, b"{}"),
    ("stripe", "5,000-digit t", {"Stripe-Signature": f"t={HUGE_NUMBER},v1=00"}, b"{}"),
    (
        "standard",
        "5,000-digit webhook-timestamp",
        {"webhook-id": "m1", "webhook-timestamp": HUGE_NUMBER, "webhook-signature": "v1,AA=="},
        b"{}",
    ),
    (
        "standard",
        "webhook-timestamp ²",
        {"webhook-id": "m1", "webhook-timestamp": "²", "webhook-signature": "v1,AA=="},
        b"{}",
    ),
    (
        "mailgun-events",
        "non-ASCII signature",
        {},
        json.dumps(
            {"signature": {"timestamp": "1", "token": "t", "signature": "é"}}, ensure_ascii=False
        ).encode(),
    ),
    ("mailgun-events", "100,000 [", {}, DEEP),
    ("postmark-bounce?key=" + BOUNCE_KEYS["postmark_webhook_key"], "authenticated deep", {}, DEEP),
    ("sendgrid-events", "authenticated deep", _sendgrid_signed(DEEP), DEEP),
]


@pytest.mark.parametrize(
    ("path", "headers", "raw"), [(a[0], a[2], a[3]) for a in ATTACKS], ids=[a[1] for a in ATTACKS]
)
def test_reviewed_attacks_get_a_clear_4xx(every_source_client, runtime, path, headers, raw):
    client, _ = every_source_client
    response = client.post(f"/hooks/{path}", data=raw, headers=headers)
    assert response.status_code in (400, 401), response.data[:200]
    assert json_of(response)["error"]
    assert stored_keys(runtime.store.redis) == []


def _post_targets(app, sources: list[str]) -> list[tuple[str, str | None]]:
    """Every POST route of the app, as (rule, source): `/hooks/<source>` once per source."""
    targets: list[tuple[str, str | None]] = []
    for rule in app.url_map.iter_rules():
        if "POST" not in (rule.methods or ()):
            continue
        if "source" in rule.arguments:
            targets += [(rule.rule, source) for source in sources]
        else:
            targets.append((rule.rule, None))
    return targets


header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
path_parts = st.text(string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=40)
mailgun_like = st.fixed_dictionaries(
    {
        "signature": st.fixed_dictionaries(
            {"timestamp": field_values, "token": field_values, "signature": field_values}
        ),
        "event-data": json_values,
    }
).map(lambda v: json.dumps(v).encode())
HEADER_NAMES = [
    "MEMBERPRESS-WEBHOOK-KEY",
    "X-WC-Webhook-Signature",
    "X-WC-Webhook-Topic",
    "Stripe-Signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "Content-Type",
    "Authorization",
    "X-Twilio-Email-Event-Webhook-Signature",
    "X-Twilio-Email-Event-Webhook-Timestamp",
]


@pytest.mark.slow
@settings(max_examples=examples(500), deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), raw=bodies | mailgun_like)
def test_unauthenticated_random_posts_to_every_endpoint_never_break_it(
    every_source_client, runtime, data, raw
):
    client, sources = every_source_client
    rule, source = data.draw(st.sampled_from(_post_targets(client.application, sources)))
    path = re.sub(
        r"<[^>]+>", lambda _: data.draw(path_parts), rule.replace("<source>", source or "")
    )
    headers = data.draw(st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=4))
    before = set(stored_keys(runtime.store.redis))
    response = client.post(path, data=raw, headers=headers)
    assert response.status_code < 500, (path, response.status_code, raw[:100])
    if response.status_code >= 400 and path.startswith("/hooks/"):
        assert json_of(response)["error"]
    if response.status_code >= 400:
        assert set(stored_keys(runtime.store.redis)) == before


def _named(source: str, name: str) -> dict:
    if source == "memberpress":
        return payloads.memberpress(first_name=name)
    if source == "woocommerce":
        payload = source_payloads.woocommerce()
        payload["billing"]["first_name"] = name
        return payload
    payload = source_payloads.standard()
    payload["data"]["member"]["first_name"] = name
    return payload


@pytest.mark.parametrize("source", ["memberpress", "woocommerce", "standard"])
@pytest.mark.parametrize("name", ["Jane\r\nBcc: x@evil.example", "Ja\x00ne"])
def test_a_name_with_a_line_break_or_nul_is_read_as_absent_and_accepted(
    post_source, post_hook, runtime, source, name
):
    # docs/guarantees.md "Hostile input": optional fields are lenient for every source.
    payload = _named(source, name)
    if source == "memberpress":
        response = post_hook.memberpress(payload)
    else:
        response = getattr(post_source, source)(payload)
    assert response.status_code == 202, response.get_data()
    event = runtime.store.load_event(json_of(response)["event_id"])
    assert event.member.first_name == ""
