"""/admin/templates: the gallery (test client and a real headless Chromium) and "send me a
test" through the configured transport."""

from __future__ import annotations

import base64
import re
from dataclasses import replace

import pytest

from hooks import create_app

PASSWORD = "gallery-admin-pw"
ADMIN_EMAIL = "owner@example.com"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}


@pytest.fixture
def settings(settings):
    return replace(settings, admin_password=PASSWORD, admin_email=ADMIN_EMAIL)


def _csrf(client) -> str:
    page = client.get("/admin/templates", headers=AUTH).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


# --- the gallery ----------------------------------------------------------------------------


def test_gallery_needs_the_admin_password(client):
    assert client.get("/admin/templates").status_code == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:nope").decode()}
    assert client.get("/admin/templates", headers=wrong).status_code == 401


def test_gallery_does_not_exist_without_an_admin_password(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, admin_password="")})
    assert app.test_client().get("/admin/templates", headers=AUTH).status_code == 404


def test_gallery_shows_subject_preheader_frame_and_text_part(client):
    response = client.get("/admin/templates?locale=pt_BR&membership=3006", headers=AUTH)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Obrigado, Maria — podemos fazer uma pergunta?" in page
    assert "Sua assinatura Gold Club foi cancelada. Um clique nos conta o motivo." in page
    assert "Obrigado por ter estado conosco, Maria." in page  # the text part
    assert (
        '<iframe class="tpl-html" sandbox' in page
        and "/admin/templates/feedback_request/html?locale=pt_BR&amp;membership=3006" in page
    )
    csp = response.headers["Content-Security-Policy"]
    assert "frame-src 'self'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp  # still no inline scripts


def test_the_email_html_is_served_with_its_own_strict_policy(client):
    response = client.get("/admin/templates/feedback_request/html?locale=en", headers=AUTH)
    assert response.status_code == 200
    assert "Thank you for being with us, Maria." in response.get_data(as_text=True)
    csp = response.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script" not in csp
    assert "frame-ancestors 'self'" in csp
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert client.get("/admin/templates/feedback_request/html").status_code == 401


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/admin/templates?locale=fr", 400, "no &#39;fr&#39; language folder"),
        ("/admin/templates?membership=../../etc", 400, "a membership id is letters"),
        ("/admin/templates/nope/html", 404, "there is no email called"),
        ("/admin/templates/feedback_request/html?locale=xx", 400, "language folder"),
    ],
)
def test_bad_choices_get_a_clear_4xx(client, url, status, message):
    response = client.get(url, headers=AUTH)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)


def test_a_broken_template_is_shown_not_a_500(template_copy, runtime):
    template_copy.edit("en/feedback_request.txt", "{{ site_name }}", "{{ sitename }}")
    app = create_app(
        {
            "TESTING": True,
            "SETTINGS": replace(template_copy.settings, admin_password=PASSWORD),
        }
    )
    client = app.test_client()
    response = client.get("/admin/templates", headers=AUTH)
    assert response.status_code == 200
    assert "could not be rendered: unknown variable {{ sitename }}" in response.get_data(
        as_text=True
    )
    html = client.get("/admin/templates/feedback_request/html", headers=AUTH)
    assert html.status_code == 422


# --- send me a test -------------------------------------------------------------------------


def test_send_test_goes_through_the_transport_to_the_admin_address(client, outbox):
    token = _csrf(client)
    response = client.post(
        "/admin/templates/feedback_request/send-test",
        data={"csrf_token": token, "locale": "pt_BR", "membership": "3006"},
        headers=AUTH,
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/templates?locale=pt_BR&membership=3006")
    [message] = outbox()
    assert message["To"].addresses[0].addr_spec == ADMIN_EMAIL
    assert message["Subject"] == "[Test] Obrigado, Maria — podemos fazer uma pergunta?"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Sua assinatura Gold Club foi cancelada" in text
    page = client.get(response.headers["Location"], headers=AUTH).get_data(as_text=True)
    assert f"Sent a test of feedback_request (pt_BR) to {ADMIN_EMAIL} via outbox." in page


def test_two_tests_are_two_messages(client, outbox):
    token = _csrf(client)
    for _ in range(2):
        client.post(
            "/admin/templates/feedback_request/send-test",
            data={"csrf_token": token},
            headers=AUTH,
        )
    ids = {m["Message-ID"] for m in outbox()}
    assert len(ids) == 2


def test_send_test_needs_the_csrf_token(client, outbox):
    _csrf(client)
    response = client.post(
        "/admin/templates/feedback_request/send-test", data={"locale": "en"}, headers=AUTH
    )
    assert response.status_code == 400
    assert outbox() == []


def test_send_test_without_an_admin_address_is_refused(settings, runtime, outbox):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, admin_email="")})
    client = app.test_client()
    page = client.get("/admin/templates", headers=AUTH).get_data(as_text=True)
    assert "Set FAREWELL_ADMIN_EMAIL to receive test emails." in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        "/admin/templates/feedback_request/send-test", data={"csrf_token": token}, headers=AUTH
    )
    assert response.status_code == 409
    assert outbox() == []


def test_send_test_of_an_unknown_email_is_404(client):
    token = _csrf(client)
    response = client.post(
        "/admin/templates/nope/send-test", data={"csrf_token": token}, headers=AUTH
    )
    assert response.status_code == 404


def test_send_test_over_smtp_reports_the_result(smtp_settings, runtime, smtp_server):
    app = create_app(
        {
            "TESTING": True,
            "SETTINGS": replace(smtp_settings, admin_password=PASSWORD, admin_email=ADMIN_EMAIL),
        }
    )
    client = app.test_client()
    token = _csrf(client)
    smtp_server.sink.rcpt_reply = "550 5.1.1 no such user"
    response = client.post(
        "/admin/templates/feedback_request/send-test", data={"csrf_token": token}, headers=AUTH
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"], headers=AUTH).get_data(as_text=True)
    assert "The test of feedback_request could not be sent" in page
    smtp_server.sink.rcpt_reply = None
    client.post(
        "/admin/templates/feedback_request/send-test", data={"csrf_token": token}, headers=AUTH
    )
    [(_, rcpt_tos)] = smtp_server.sink.envelopes
    assert rcpt_tos == [ADMIN_EMAIL]


# --- in a real browser ----------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize(
    ("locale", "subject", "body"),
    [
        ("en", "Thank you, Maria — may we ask one thing?", "Thank you for being with us, Maria."),
        (
            "pt_BR",
            "Obrigado, Maria — podemos fazer uma pergunta?",
            "Obrigado por ter estado conosco, Maria.",
        ),
    ],
)
def test_gallery_in_chromium_shows_each_locale(
    browser, live_server, tmp_path, locale, subject, body
):
    browser.set_extra_http_headers(AUTH)
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.goto(f"{live_server.url}/admin/templates?locale={locale}")
    assert page.locator(".tpl-subject").first.inner_text() == subject
    frame = page.frame_locator("#tpl-feedback_request iframe.tpl-html")
    heading = frame.locator("h1")
    heading.wait_for(state="visible")
    assert heading.inner_text() == body
    # The email's own inlined styles apply inside the frame (its CSP allows them).
    assert heading.evaluate("e => getComputedStyle(e).fontSize") == "22px"
    section = page.locator("#tpl-feedback_request")
    shot = tmp_path / f"gallery-{locale}.png"
    page.set_viewport_size({"width": 900, "height": 1400})
    section.screenshot(path=str(shot))
    assert shot.stat().st_size > 5000
    section.get_by_text("Text part").click()
    assert body in section.locator(".tpl-text pre").inner_text()
    assert not [e for e in errors if "Content Security Policy" in e], errors


@pytest.mark.browser
def test_the_email_follows_dark_mode(browser, live_server):
    browser.set_extra_http_headers(AUTH)
    page = browser.new_page()
    page.emulate_media(color_scheme="dark")
    page.goto(f"{live_server.url}/admin/templates/feedback_request/html?locale=en")
    heading = page.locator("h1")
    assert heading.inner_text() == "Thank you for being with us, Maria."
    assert heading.evaluate("e => getComputedStyle(e).color") == "rgb(236, 232, 225)"
    page.emulate_media(color_scheme="light")
    assert heading.evaluate("e => getComputedStyle(e).color") == "rgb(43, 43, 43)"


def test_gallery_without_a_secret_key_still_shows_the_emails(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, secret_key="")})
    response = app.test_client().get("/admin/templates", headers=AUTH)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Thank you, Maria — may we ask one thing?" in page
    assert "Set FAREWELL_SECRET_KEY to send test emails from here." in page


def test_a_broken_playbook_is_explained_not_a_500(template_copy, runtime):
    template_copy.write("playbook.toml", "[default\nsteps = 1\n")
    settings = replace(template_copy.settings, admin_password=PASSWORD)
    client = create_app({"TESTING": True, "SETTINGS": settings}).test_client()
    response = client.get("/admin/templates", headers=AUTH)
    assert response.status_code == 200
    assert "The playbook could not be read" in response.get_data(as_text=True)
    html = client.get("/admin/templates/feedback_request/html", headers=AUTH)
    assert html.status_code == 503
    assert "not valid TOML" in html.get_data(as_text=True)


# --- when each email goes out, and whose membership it is ------------------------------------


def test_gallery_says_when_each_email_goes_out_and_the_memberships_title(client, post_hook, work):
    from tests import payloads

    post_hook.memberpress(payloads.memberpress(membership_id="3006", membership_title="Atelier"))
    work()
    page = client.get("/admin/templates?membership=3006", headers=AUTH).get_data(as_text=True)
    feedback = page[page.index('id="tpl-feedback_request"') :]
    assert "Goes out: right after the cancellation" in feedback
    winback = page[page.index('id="tpl-winback"') :]
    assert "Goes out: 14 days after the cancellation" in winback
    assert "membership Atelier (3006)" in page
    assert '<option value="3006" selected>Atelier (3006)</option>' in page


def test_timing_in_words():
    from datetime import timedelta

    from hooks.email_previews import timing
    from worker.playbook import Step

    assert timing(Step("a", timedelta(0), "transactional")) == "right after the cancellation"
    assert timing(Step("a", timedelta(hours=1), "marketing")) == "1 hour after the cancellation"
    assert (
        timing(Step("a", timedelta(minutes=90), "marketing", only_if_no_feedback=True))
        == "90 minutes after the cancellation, if the member has not answered the survey"
    )
