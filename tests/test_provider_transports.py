"""Each HTTP API transport against a real local server speaking the provider's documented
API: the exact request, the provider's message id read back, and error classification."""

from __future__ import annotations

import pytest

from tests.fixtures_providers import MAILGUN_DOMAIN, MAILGUN_KEY, POSTMARK_TOKEN, SENDGRID_KEY
from worker.mail import get_transport
from worker.mail.errors import MailConfigError, RecipientRejected, TransientMailError
from worker.mail.message import OutgoingEmail
from worker.settings import Settings

MARKETING = OutgoingEmail(
    sender="Ana at Example Club <ana@example.com>",
    to="jane.doe@example.com",
    to_name="Jane Doe",
    subject="We kept your seat warm",
    html="<p>Hello Jane</p>",
    text="Hello Jane",
    message_id="<seq-1.winback@members.example.com>",
    stream="marketing",
    headers={
        "List-Id": "Example Club farewell <farewell.members.example.com>",
        "List-Unsubscribe": "<https://members.example.com/unsubscribe/tok>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    },
    tags={"sequence": "seq-1", "step": "winback"},
)
TRANSACTIONAL = OutgoingEmail(
    sender="ana@example.com",
    to="jane.doe@example.com",
    subject="Thank you",
    html="<p>Thanks</p>",
    text="Thanks",
    message_id="<seq-1.feedback_request@members.example.com>",
    tags={"sequence": "seq-1", "step": "feedback_request"},
)


@pytest.fixture
def transport_for(settings, provider_api):
    from tests.fixtures_providers import provider_settings

    made = []

    def build(name: str, **overrides):
        transport = get_transport(provider_settings(settings, name, provider_api.url, **overrides))
        made.append(transport)
        return transport

    yield build
    for transport in made:
        transport.close()


# --- the exact requests -------------------------------------------------------------------


def test_postmark_request_is_the_documented_json(transport_for, provider_api):
    message_id = transport_for("postmark").send(MARKETING)
    [req] = provider_api.accepted
    assert req.headers["X-Postmark-Server-Token"] == POSTMARK_TOKEN
    assert req.headers["Accept"] == "application/json"
    assert req.content_type == "application/json"
    assert req.json == {
        "From": "Ana at Example Club <ana@example.com>",
        "To": "Jane Doe <jane.doe@example.com>",
        "Subject": "We kept your seat warm",
        "HtmlBody": "<p>Hello Jane</p>",
        "TextBody": "Hello Jane",
        "MessageStream": "broadcast",
        "Headers": [
            {"Name": "List-Id", "Value": "Example Club farewell <farewell.members.example.com>"},
            {"Name": "List-Unsubscribe", "Value": "<https://members.example.com/unsubscribe/tok>"},
            {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
        ],
        "Metadata": {"sequence": "seq-1", "step": "winback"},
        "Tag": "winback",
    }
    assert len(message_id) == 36  # Postmark's MessageID (a UUID), not ours


def test_postmark_streams_are_configurable(transport_for, provider_api):
    transport_for("postmark").send(TRANSACTIONAL)
    assert provider_api.accepted[0].json["MessageStream"] == "outbound"
    with pytest.raises(MailConfigError, match="1235"):
        transport_for("postmark", postmark_marketing_stream="newsletters").send(MARKETING)


def test_mailgun_request_is_the_documented_form(transport_for, provider_api):
    message_id = transport_for("mailgun").send(MARKETING)
    [req] = provider_api.accepted
    assert req.path == f"/v3/{MAILGUN_DOMAIN}/messages"
    assert req.content_type.startswith("multipart/form-data")
    assert req.headers["Authorization"].startswith("Basic ")
    assert req.form == [
        ("from", "Ana at Example Club <ana@example.com>"),
        ("to", "Jane Doe <jane.doe@example.com>"),
        ("subject", "We kept your seat warm"),
        ("text", "Hello Jane"),
        ("html", "<p>Hello Jane</p>"),
        ("h:List-Id", "Example Club farewell <farewell.members.example.com>"),
        ("h:List-Unsubscribe", "<https://members.example.com/unsubscribe/tok>"),
        ("h:List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("o:tag", "winback"),
        ("v:sequence", "seq-1"),
        ("v:step", "winback"),
    ]
    assert message_id.endswith(f"@{MAILGUN_DOMAIN}") and not message_id.startswith("<")


def test_mailgun_region_picks_the_api_host():
    from worker.mail.mailgun import MailgunConfig

    assert MailgunConfig(MAILGUN_KEY, MAILGUN_DOMAIN).base == "https://api.mailgun.net"
    assert MailgunConfig(MAILGUN_KEY, MAILGUN_DOMAIN, "EU").base == "https://api.eu.mailgun.net"
    with pytest.raises(MailConfigError, match="us or eu"):
        MailgunConfig(MAILGUN_KEY, MAILGUN_DOMAIN, "asia")


def test_mailgun_wrong_domain_is_a_config_error(transport_for):
    with pytest.raises(MailConfigError, match="404"):
        transport_for("mailgun", mailgun_domain="other.example.com").send(MARKETING)


def test_sendgrid_request_is_the_documented_json(transport_for, provider_api):
    message_id = transport_for("sendgrid").send(MARKETING)
    [req] = provider_api.accepted
    assert req.headers["Authorization"] == f"Bearer {SENDGRID_KEY}"
    assert req.json == {
        "personalizations": [{"to": [{"email": "jane.doe@example.com", "name": "Jane Doe"}]}],
        "from": {"email": "ana@example.com", "name": "Ana at Example Club"},
        "subject": "We kept your seat warm",
        "content": [
            {"type": "text/plain", "value": "Hello Jane"},
            {"type": "text/html", "value": "<p>Hello Jane</p>"},
        ],
        "custom_args": {"sequence": "seq-1", "step": "winback"},
        "headers": {
            "List-Id": "Example Club farewell <farewell.members.example.com>",
            "List-Unsubscribe": "<https://members.example.com/unsubscribe/tok>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "categories": ["farewell", "winback"],
    }
    assert len(message_id) == 22  # from the X-Message-Id header


def test_sendgrid_omits_empty_names(transport_for, provider_api):
    transport_for("sendgrid").send(TRANSACTIONAL)
    body = provider_api.accepted[0].json
    assert body["personalizations"] == [{"to": [{"email": "jane.doe@example.com"}]}]
    assert body["from"] == {"email": "ana@example.com"}


def test_one_session_is_reused_for_many_sends(transport_for, provider_api):
    transport = transport_for("postmark")
    session = transport.session
    for _ in range(3):
        transport.send(TRANSACTIONAL)
    assert transport.session is session
    assert len(provider_api.accepted) == 3


@pytest.mark.parametrize("name", ["postmark", "mailgun", "sendgrid"])
def test_missing_credentials_are_named(settings, name):
    from dataclasses import replace

    with pytest.raises(MailConfigError, match=f"FAREWELL_{name.upper()}_"):
        get_transport(replace(settings, mail_transport=name))


def test_unknown_transport_lists_the_choices(settings):
    from dataclasses import replace

    with pytest.raises(MailConfigError, match="postmark, mailgun, sendgrid"):
        get_transport(replace(settings, mail_transport="pigeon"))


# --- error classes, the same for every provider ----------------------------------------------

PROVIDERS = ["postmark", "mailgun", "sendgrid"]


@pytest.mark.parametrize("name", PROVIDERS)
def test_429_is_transient_with_the_providers_retry_after(transport_for, provider_api, name):
    provider_api.fail_next("429")
    with pytest.raises(TransientMailError) as info:
        transport_for(name).send(TRANSACTIONAL)
    assert info.value.retry_after == 7.0
    assert info.value.sent_nothing


@pytest.mark.parametrize("name", PROVIDERS)
def test_5xx_is_transient(transport_for, provider_api, name):
    provider_api.fail_next("500")
    with pytest.raises(TransientMailError, match="HTTP 500") as info:
        transport_for(name).send(TRANSACTIONAL)
    assert info.value.sent_nothing and info.value.retry_after is None


@pytest.mark.parametrize("name", PROVIDERS)
def test_bad_api_key_is_a_config_error(transport_for, name):
    with pytest.raises(MailConfigError, match="HTTP 401"):
        transport_for(
            name, postmark_token="wrong", mailgun_api_key="wrong", sendgrid_api_key="wrong"
        ).send(TRANSACTIONAL)


@pytest.mark.parametrize("name", PROVIDERS)
def test_unverified_sender_is_a_config_error(transport_for, provider_api, name):
    provider_api.fail_next("unverified")
    with pytest.raises(MailConfigError):
        transport_for(name).send(TRANSACTIONAL)


@pytest.mark.parametrize("name", PROVIDERS)
def test_invalid_address_is_permanent_for_the_recipient(transport_for, provider_api, name):
    provider_api.fail_next("invalid")
    with pytest.raises(RecipientRejected) as info:
        transport_for(name).send(TRANSACTIONAL)
    assert info.value.reason == "invalid_address"
    assert "jane.doe@example.com" not in str(info.value)  # addresses stay out of logs


def test_postmark_inactive_recipient_is_provider_suppression(transport_for, provider_api):
    provider_api.fail_next("inactive")
    with pytest.raises(RecipientRejected) as info:
        transport_for("postmark").send(TRANSACTIONAL)
    assert info.value.reason == "provider_suppressed"
    assert "406" in str(info.value)


def test_postmark_invalid_request_that_is_not_the_address_is_not_blamed_on_the_member(
    transport_for,
):
    empty = OutgoingEmail(
        sender="ana@example.com", to="jane@example.com", subject="s", html="", text="",
        message_id="<x@y>",
    )  # fmt: skip
    with pytest.raises(MailConfigError, match="ErrorCode 300"):
        transport_for("postmark").send(empty)


@pytest.mark.parametrize("name", PROVIDERS)
def test_server_down_is_transient_and_sent_nothing(settings, name):
    from devstack.redis_server import free_port
    from tests.fixtures_providers import provider_settings

    transport = get_transport(provider_settings(settings, name, f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(TransientMailError, match="cannot connect") as info:
        transport.send(TRANSACTIONAL)
    assert info.value.sent_nothing
    transport.close()


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_lost_reply_is_uncertain_not_retryable(transport_for, provider_api, name):
    provider_api.fail_next("timeout")
    with pytest.raises(TransientMailError, match="no reply within") as info:
        transport_for(name, mail_read_timeout=0.3).send(TRANSACTIONAL)
    assert info.value.sent_nothing is False  # the provider may have it: never resend blindly


# --- pure helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        ("Wed, 25 Nov 2026 21:01:00 GMT", 60.0),
        ("Wed, 25 Nov 2026 20:00:00 GMT", 0.0),  # in the past: go now
        ("soon", None),
        ("99999999", 6 * 3600.0),  # capped
    ],
)
def test_parse_retry_after(value, expected):
    from datetime import UTC, datetime

    from worker.mail.http import parse_retry_after

    now = datetime(2026, 11, 25, 21, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after(value, now) == expected


def test_provider_settings_come_from_the_environment():
    settings = Settings.from_env(
        {
            "FAREWELL_MAIL_TRANSPORT": "mailgun",
            "FAREWELL_MAILGUN_API_KEY": "k",
            "FAREWELL_MAILGUN_DOMAIN": "mg.example.org",
            "FAREWELL_MAILGUN_REGION": "eu",
            "FAREWELL_MAIL_READ_TIMEOUT": "12.5",
        }
    )
    transport = get_transport(settings)
    assert transport.config.base == "https://api.eu.mailgun.net"
    assert transport.config.timeouts.pair() == (5.0, 12.5)
    transport.close()


def test_addresses_in_provider_messages_are_masked():
    from worker.privacy import mask_emails_in

    text = "Found inactive addresses: jane.doe@example.com, 'bob@example.org'."
    assert mask_emails_in(text) == "Found inactive addresses: j***@example.com, 'b***@example.org'."


def test_the_worker_refuses_to_start_without_the_providers_key(settings):
    from dataclasses import replace

    from worker.process import preflight
    from worker.runtime import Runtime, set_runtime

    set_runtime(Runtime(replace(settings, mail_transport="postmark")))
    try:
        with pytest.raises(MailConfigError, match="FAREWELL_POSTMARK_TOKEN"):
            preflight()
    finally:
        set_runtime(None)


def test_sendgrid_blames_the_member_only_for_their_own_address():
    # A missing `to` array would be our bug, not a bad address: never suppress for it.
    from worker.mail.sendgrid import _RECIPIENT_FIELD

    assert _RECIPIENT_FIELD.match("personalizations.0.to.0.email")
    assert not _RECIPIENT_FIELD.match("personalizations.0.to")
    assert not _RECIPIENT_FIELD.match("from.email")


# --- the commit: one interface for every transport ------------------------------------------


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_commit_comes_once_just_before_the_request(transport_for, provider_api, name):
    seen_before_commit = []

    def commit():
        seen_before_commit.append(len(provider_api.accepted))

    transport_for(name).send(TRANSACTIONAL, commit)
    assert seen_before_commit == [0]
    assert len(provider_api.accepted) == 1


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_commit_that_refuses_sends_nothing(transport_for, provider_api, name):
    class Lost(Exception):
        pass

    def commit():
        raise Lost

    with pytest.raises(Lost):
        transport_for(name).send(TRANSACTIONAL, commit)
    assert provider_api.received == []
