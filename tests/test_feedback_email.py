"""A cancellation becomes one personal feedback-request email: jobs, idempotency, locales,
and the SMTP transport against a real aiosmtpd server."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests import payloads
from tests.conftest import json_of, parts
from tests.fixtures_seq import cancel
from tests.rq_helpers import run_queued
from worker import jobs
from worker.runtime import Runtime, set_runtime
from worker.tokens import Scope, read_token


def test_a_cancellation_sends_one_feedback_request(post_hook, work, outbox, settings):
    event_id = json_of(post_hook.memberpress())["event_id"]
    work()
    [message] = outbox()
    assert message["To"].addresses[0].addr_spec == "jane.doe@example.com"
    assert message["From"].addresses[0].addr_spec == "ana@example.com"
    assert message["Subject"] == "Thank you, Jane — may we ask one thing?"
    assert message["Message-ID"].strip() == f"<{event_id}.feedback_request@members.example.com>"
    assert "farewell.members.example.com" in message["List-Id"]
    # The feedback request is transactional: no unsubscribe headers on it.
    assert message["List-Unsubscribe"] is None
    text, html = parts(message)
    assert "Thank you for being with us, Jane." in text
    assert "Gold Club" in text and "Gold Club" in html
    assert f"{settings.base_url}/feedback/" in text
    assert "?reason=too_expensive" in html
    assert "style=" in html  # CSS inlined for email clients
    assert "<style" not in html.split("<body", 1)[1]


def test_survey_links_carry_a_signed_feedback_token_for_the_sequence(
    post_hook, work, outbox, settings
):
    event_id = json_of(post_hook.memberpress())["event_id"]
    work()
    text, _html = parts(outbox()[0])
    token = text.split("/feedback/", 1)[1].split("?", 1)[0]
    assert read_token(settings.secret_key, Scope.FEEDBACK, token) == event_id


def test_a_replayed_event_and_a_rerun_job_still_send_one_email(post_hook, work, outbox, runtime):
    event_id = json_of(post_hook.memberpress())["event_id"]
    work()
    # RQ is at-least-once: run both jobs again by hand.
    assert jobs.handle_event(event_id).startswith("sequence exists")
    assert jobs.send_step(event_id, "feedback_request").startswith("skipped: already claimed")
    work()
    assert len(outbox()) == 1


def test_two_members_get_two_emails(post_hook, work, outbox):
    post_hook.memberpress(payloads.memberpress(email="a@example.com", subscription_id="1"))
    post_hook.memberpress(payloads.memberpress(email="b@example.com", subscription_id="2"))
    work()
    recipients = sorted(m["To"].addresses[0].addr_spec for m in outbox())
    assert recipients == ["a@example.com", "b@example.com"]


def test_brazilian_members_get_the_portuguese_email(post_hook, work, outbox):
    post_hook.memberpress(payloads.memberpress(first_name="João", locale="pt_BR"))
    work()
    [message] = outbox()
    assert message["Subject"] == "Obrigado, João — podemos fazer uma pergunta?"
    text, _ = parts(message)
    assert "Sua assinatura Gold Club foi cancelada" in text


def test_default_locale_applies_when_the_source_gives_none(settings, client, post_hook, outbox):
    rt = Runtime(replace(settings, default_locale="pt_BR"))
    set_runtime(rt)
    post_hook.memberpress()
    run_queued(rt.queue)
    assert outbox()[0]["Subject"].startswith("Obrigado, Jane")


def test_no_first_name_still_reads_well(post_hook, work, outbox):
    post_hook.memberpress(payloads.memberpress(first_name=""))
    work()
    assert outbox()[0]["Subject"] == "Thank you — may we ask one thing?"


def test_known_access_end_date_is_told_in_the_members_language(post_hook, work, outbox):
    payload = payloads.memberpress(locale="pt_BR")
    payload["data"]["expires_at"] = "2026-12-31 23:59:59"
    post_hook.memberpress(payload)
    work()
    text, _ = parts(outbox()[0])
    assert "até 31 de dezembro de 2026" in text


def test_member_data_is_escaped_in_html(post_hook, work, outbox):
    post_hook.memberpress(payloads.memberpress(first_name="<b>Jane</b>"))
    work()
    _, html = parts(outbox()[0])
    assert "<b>Jane</b>" not in html
    assert "&lt;b&gt;Jane&lt;/b&gt;" in html


def test_suppressed_addresses_get_nothing(post_hook, work, outbox, runtime):
    runtime.store.suppress("jane.doe@example.com", "unsubscribed")
    post_hook.memberpress()
    work()
    assert outbox() == []


# --- SMTP ---------------------------------------------------------------------------------


def test_smtp_delivers_both_parts_to_a_real_server(smtp_runtime, post_hook, smtp_server, settings):
    post_hook.memberpress()
    run_queued(smtp_runtime.queue)
    [(mail_from, rcpt_tos)] = smtp_server.sink.envelopes
    assert mail_from == "ana@example.com"
    assert rcpt_tos == ["jane.doe@example.com"]
    [message] = smtp_server.sink.messages
    assert message["Subject"] == "Thank you, Jane — may we ask one thing?"
    text, html = parts(message)
    assert "Jane" in text and "Jane" in html
    assert f"{settings.base_url}/feedback/" in text
    assert f"{settings.base_url}/feedback/" in html


def test_smtp_reuses_one_connection_for_many_emails(smtp_runtime, post_hook, smtp_server):
    for n in range(3):
        post_hook.memberpress(
            payloads.memberpress(email=f"m{n}@example.com", subscription_id=str(n))
        )
    run_queued(smtp_runtime.queue)
    assert len(smtp_server.sink.messages) == 3
    assert smtp_runtime.transport._conn is not None


def test_smtp_permanent_recipient_refusal_is_not_retried(smtp_runtime, post_hook, smtp_server):
    smtp_server.sink.rcpt_reply = "550 5.1.1 No such user"
    event_id = json_of(post_hook.memberpress())["event_id"]
    run_queued(smtp_runtime.queue)
    assert smtp_server.sink.messages == []
    # Permanent for the address: suppressed with the reason, and the step is never retried.
    assert smtp_runtime.store.suppression("jane.doe@example.com").reason == "bounced"
    assert jobs.send_step(event_id, "feedback_request") == "skipped: address suppressed"
    assert smtp_runtime.store.redis.get(f"farewell:send:{event_id}:feedback_request") == (
        "sent:rejected"
    )


def test_smtp_temporary_refusal_retries_and_then_delivers_once(
    smtp_runtime, post_hook, smtp_server
):
    from rq.job import Job

    smtp_server.sink.rcpt_reply = "451 4.3.0 Try again later"
    event_id = json_of(post_hook.memberpress())["event_id"]
    run_queued(smtp_runtime.queue)
    job = Job.fetch(
        f"step-{event_id}-feedback_request",
        connection=smtp_runtime.queue.connection,
        serializer=smtp_runtime.queue.serializer,
    )
    # The event's job tried once; the step's own job waits to retry, counting that try.
    assert job.get_status() == "scheduled"
    assert job.meta == {"earlier_attempts": 1}
    assert not smtp_runtime.store.is_suppressed("jane.doe@example.com")
    smtp_server.sink.rcpt_reply = None
    assert jobs.send_step(event_id, "feedback_request") == "sent"
    assert len(smtp_server.sink.messages) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"no dot at a line start\r\n",
        b".a dot first\r\n..two dots\r\nmiddle . dot\r\n.\r\nend",  # and no final CRLF
    ],
)
def test_data_dot_stuffs_only_what_needs_it_and_the_server_reads_back_the_message(
    smtp_server, body
):
    import smtplib

    from worker.mail.smtp import _data

    message = b"Subject: dots\r\n\r\n" + body
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as conn:
        conn.ehlo()
        conn.mail("a@example.com")
        conn.rcpt("b@example.com")
        assert _data(conn, message)[0] == 250
    [received] = smtp_server.sink.messages
    expected = body if body.endswith(b"\r\n") else body + b"\r\n"
    assert received.get_payload().encode() == expected  # stuffing undone by the server


def test_smtp_server_down_is_transient(smtp_settings):
    from devstack.redis_server import free_port
    from worker.mail.errors import TransientMailError
    from worker.mail.message import OutgoingEmail
    from worker.mail.smtp import SmtpConfig, SmtpTransport

    transport = SmtpTransport(SmtpConfig.from_url(f"smtp://127.0.0.1:{free_port()}", 2))
    email = OutgoingEmail(
        sender="a@example.com",
        to="b@example.com",
        subject="s",
        html="<p>h</p>",
        text="t",
        message_id="<x@example.com>",
    )
    with pytest.raises(TransientMailError) as info:
        transport.send(email)
    assert info.value.sent_nothing


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("mail.example.com", 25, None, None, False, False)),
        (
            "smtp://u%40x:p%2Fw@mail.example.com:587?starttls=1",
            ("mail.example.com", 587, "u@x", "p/w", False, True),
        ),
        ("smtps://u:p@mail.example.com", ("mail.example.com", 465, "u", "p", True, False)),
    ],
)
def test_smtp_url_parsing(url, expected):
    from worker.mail.smtp import SmtpConfig

    cfg = SmtpConfig.from_url(url)
    assert (cfg.host, cfg.port, cfg.username, cfg.password, cfg.use_ssl, cfg.starttls) == expected


def test_smtp_url_with_another_scheme_is_a_config_error():
    from worker.mail.errors import MailConfigError
    from worker.mail.smtp import SmtpConfig

    with pytest.raises(MailConfigError, match="smtp:// or smtps://"):
        SmtpConfig.from_url("http://mail.example.com")


def test_feedback_is_stored_once_per_sequence_and_replaced_on_resubmission(runtime):
    from worker.store import Feedback

    first = Feedback("seq-1", "too_expensive", "", no_email=False, at=1.0)
    assert runtime.store.save_feedback(first) is True
    second = Feedback("seq-1", "not_using", "busy year", no_email=True, at=2.0)
    assert runtime.store.save_feedback(second) is False
    assert runtime.store.load_feedback("seq-1") == second
    assert runtime.store.load_feedback("seq-2") is None


@pytest.mark.parametrize(
    ("locale", "feedback", "winback"),
    [
        ("en", "Thank you, {} — may we ask one thing?", "{}, we hope you are well"),
        (
            "pt_BR",
            "Obrigado, {} — podemos fazer uma pergunta?",
            "{}, esperamos que você esteja bem",
        ),
    ],
)
def test_subjects_are_plain_text_and_the_html_stays_escaped(
    post_hook, clock, outbox, locale, feedback, winback
):
    name = """D'Arcy & <Jo> "Q\""""
    cancel(post_hook, first_name=name, locale=locale)
    clock.advance(seconds=0)
    clock.advance(days=30)
    first, second = outbox()
    assert first["Subject"] == feedback.format(name)
    assert second["Subject"] == winback.format(name)
    for message in (first, second):
        text, html = parts(message)
        assert name in text
        assert 'D\'Arcy &amp; &lt;Jo&gt; "Q"' in html  # as the CSS inliner serializes it
        assert "<Jo>" not in html


def test_a_name_that_looks_like_an_encoded_word_is_shown_as_written(post_hook, work, outbox):
    evil = "=?utf-8?q?evil=40attacker.test?="
    post_hook.memberpress(payloads.memberpress(first_name=evil, last_name="Doe"))
    work()
    [message] = outbox()  # read with the email package's default policy
    [to] = message["To"].addresses
    assert (to.display_name, to.addr_spec) == (f"{evil} Doe", "jane.doe@example.com")
    assert message["Subject"] == f"Thank you, {evil} — may we ask one thing?"
