"""Unsubscribing: RFC 8058 one-click, the confirmation page (also in a real browser), the
`suppress` commands, bad links and Redis down."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from hooks import create_app
from tests.conftest import HookPoster, parts
from tests.fixtures_seq import JANE, cancel, step_message, unsubscribe_path
from worker import jobs
from worker.tokens import Scope, make_token

# --- unsubscribe --------------------------------------------------------------------------


def test_one_click_post_unsubscribes_and_no_marketing_follows(
    post_hook, clock, outbox, client, runtime, settings
):
    seq_id = cancel(post_hook)
    clock.advance(seconds=0)
    reply = client.post(
        unsubscribe_path(seq_id, settings),
        data=b"List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert reply.status_code == 200
    assert "Location" not in reply.headers
    assert runtime.store.is_suppressed(JANE)
    assert clock.scheduled() == []  # the pending win-back is cancelled at once
    clock.advance(days=30)
    assert len(outbox()) == 1
    # The send-time re-check holds too, even if a step job still runs.
    assert jobs.send_step(seq_id, "winback") == "skipped: address suppressed"


def test_get_only_confirms_and_the_form_needs_its_csrf_token(
    post_hook, clock, client, runtime, settings
):
    seq_id = cancel(post_hook, locale="pt_BR")
    clock.advance(seconds=0)
    path = unsubscribe_path(seq_id, settings)
    page = client.get(path)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'lang="pt-BR"' in body and "Parar de receber estes emails?" in body
    assert 'name="csrf_token"' in body
    assert not runtime.store.is_suppressed(JANE)  # a link scanner's GET does nothing
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 400
    assert not runtime.store.is_suppressed(JANE)
    token = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)
    done = client.post(path, data={"csrf_token": token})
    assert done.status_code == 200
    assert "Pronto, você não receberá mais estes emails." in done.get_data(as_text=True)
    assert runtime.store.suppression(JANE).reason == "unsubscribed"
    assert clock.scheduled() == []


@pytest.mark.parametrize(
    ("base_url", "config", "secure"),
    [
        ("https://members.example.com", {}, True),
        ("http://localhost:5000", {}, False),
        ("https://members.example.com", {"SESSION_COOKIE_SECURE": False}, False),
    ],
)
def test_the_session_cookie_is_samesite_lax_and_secure_on_https(
    settings, runtime, clock, base_url, config, secure
):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, base_url=base_url), **config})
    client = app.test_client()
    seq_id = cancel(HookPoster(client))
    clock.advance(seconds=0)
    page = client.get(unsubscribe_path(seq_id, settings))
    assert 'name="csrf_token"' in page.get_data(as_text=True)
    cookie = page.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie
    assert ("; Secure" in cookie) is secure


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tampered_or_foreign_tokens_record_nothing(
    post_hook, clock, client, runtime, settings, method
):
    seq_id = cancel(post_hook)
    clock.advance(seconds=0)
    good = make_token(settings.secret_key, Scope.UNSUBSCRIBE, seq_id)
    feedback_token = make_token(settings.secret_key, Scope.FEEDBACK, seq_id)
    other_secret = make_token("another-secret-0123456789", Scope.UNSUBSCRIBE, seq_id)
    # One character inside the signature changed (the last one of a base64 signature carries
    # unused bits, so changing it alone can leave the signature valid: a flaky "tamper").
    tampered = good[:-12] + ("A" if good[-12] != "A" else "B") + good[-11:]
    for token in (tampered, feedback_token, other_secret, "nonsense"):
        reply = client.open(
            f"/unsubscribe/{token}", method=method, data={"List-Unsubscribe": "One-Click"}
        )
        assert reply.status_code == 400
    assert not runtime.store.is_suppressed(JANE)
    assert clock.scheduled() == [f"step-{seq_id}-winback"]


def test_suppress_commands(runner, runtime, post_hook, clock):
    cancel(post_hook)
    clock.advance(seconds=0)
    added = runner.invoke(args=["suppress", "add", JANE, "--reason", "complained"])
    assert added.exit_code == 0 and "j***@example.com suppressed" in added.output
    assert "1 pending step(s) cancelled" in added.output
    listed = runner.invoke(args=["suppress", "list"])
    assert "j***@example.com" in listed.output and "complained" in listed.output
    assert JANE not in listed.output
    removed = runner.invoke(args=["suppress", "remove", JANE])
    assert "removed" in removed.output
    assert not runtime.store.is_suppressed(JANE)


# --- the unsubscribe page in a real browser -----------------------------------------------


@pytest.mark.browser
def test_unsubscribe_link_from_a_real_winback_in_chromium(
    browser, live_server, post_hook, clock, outbox, runtime, settings, tmp_path
):
    cancel(post_hook)
    clock.advance(days=14, minutes=1)
    text, _ = parts(step_message(outbox(), "winback"))
    link = re.search(r"Unsubscribe: (\S+)", text).group(1)
    page = browser.new_page()
    page.goto(link.replace(settings.base_url, live_server.url))
    assert page.locator("h1").inner_text() == "Stop these emails?"
    assert not runtime.store.is_suppressed(JANE)  # opening the page changes nothing
    page.screenshot(path=str(tmp_path / "unsubscribe-confirm.png"))
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_selector("text=You are unsubscribed.")
    page.screenshot(path=str(tmp_path / "unsubscribe-done.png"))
    assert runtime.store.suppression(JANE).reason == "unsubscribed"


def test_unsubscribe_while_redis_is_down_is_a_503_not_a_500(settings, own_redis, post_hook):
    from dataclasses import replace as dc_replace

    from hooks import create_app

    app = create_app({"TESTING": True, "SETTINGS": dc_replace(settings, redis_url=own_redis.url)})
    own_redis.kill()
    token = make_token(settings.secret_key, Scope.UNSUBSCRIBE, "memberpress-abc")
    client = app.test_client()
    assert client.get(f"/unsubscribe/{token}").status_code == 503
    reply = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert reply.status_code == 503


def test_unsubscribe_link_of_an_erased_member_records_nothing_and_says_so(
    client, runtime, settings
):
    path = unsubscribe_path("memberpress-erased0000000000000000", settings)
    page = client.get(path)
    assert page.status_code == 200
    assert "You will not hear from us." in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "script-src" not in page.headers["Content-Security-Policy"]
    reply = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert reply.status_code == 200
    assert runtime.store.suppressions() == []


def test_a_member_who_unsubscribed_is_not_asked_again(post_hook, clock, client, settings):
    seq_id = cancel(post_hook, locale="pt_BR")
    clock.advance(seconds=0)
    path = unsubscribe_path(seq_id, settings)
    one_click = client.post(
        path,
        data=b"List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert one_click.status_code == 200
    again = client.get(path).get_data(as_text=True)
    assert "Você já cancelou o recebimento." in again
    assert "Parar de receber estes emails?" not in again
    assert 'name="csrf_token"' not in again  # no button to press a second time


def test_pages_without_a_site_name_speak_the_members_language(post_hook, clock, settings, runtime):
    seq_id = cancel(post_hook, locale="pt_BR")
    clock.advance(seconds=0)
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, site_name="")})
    page = app.test_client().get(unsubscribe_path(seq_id, settings)).get_data(as_text=True)
    assert "nossa comunidade" in page and "our community" not in page
