"""The click in the feedback email counts: a person's click records the reason at once,
a link scanner's fetch records nothing. Real generated email, real Redis, real HTTP, and
a real headless Chromium for the person."""

from __future__ import annotations

import subprocess
import urllib.request

import pytest

from tests.conftest import BASE_URL
from tests.test_feedback_page import csrf_of, feedback_keys, path_of

NOTED = "Noted: “It costs more than it's worth to me”."


@pytest.fixture
def cancelled(post_hook, work, survey_links):
    post_hook.memberpress()
    work()
    return survey_links()


def _email_html(outbox) -> str:
    [message] = outbox()
    return message.get_body(("html",)).get_content()


def _choose(client, url: str, **form):
    page = client.get(path_of(url))
    token_path = path_of(url).split("?")[0]
    return client.post(f"{token_path}/choice", data={"csrf_token": csrf_of(page), **form})


def test_choice_replaces_the_reason_and_keeps_the_rest(client, cancelled, runtime):
    [record] = runtime.store.cancellations()
    seq = record.sequence_id
    response = _choose(client, cancelled["too_expensive"], reason="too_expensive")
    assert response.status_code == 200
    assert response.json == {"reason": "too_expensive", "noted": response.json["noted"]}
    assert response.json["noted"].startswith(NOTED)
    assert runtime.store.load_feedback(seq).reason == "too_expensive"
    # The page now says what was noted and asks for nothing more than the optional parts.
    html = client.get(path_of(cancelled["too_expensive"])).get_data(as_text=True)
    assert "Noted: “It costs more than it&#39;s worth to me”." in html
    assert '<button type="submit" id="send">Send</button>' in html
    assert "data-clicked" not in html
    # A comment sent with the form stays when a later click changes the reason.
    page = client.get(path_of(cancelled["too_expensive"]))
    client.post(
        path_of(cancelled["too_expensive"]).split("?")[0],
        data={"csrf_token": csrf_of(page), "reason": "too_expensive", "comment": "Pricey"},
    )
    assert _choose(client, cancelled["other"], reason="other").status_code == 200
    feedback = runtime.store.load_feedback(seq)
    assert (feedback.reason, feedback.comment, feedback.no_email) == ("other", "Pricey", False)
    assert len(feedback_keys(runtime)) == 1


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"reason": "too_expensive", "csrf_token": "forged"}, "This form has expired"),
        ({"reason": "too_expensive"}, "This form has expired"),
        ({"reason": "bogus", "csrf": True}, "We don't know that reason"),
        ({"reason": "", "csrf": True}, "We don't know that reason"),
    ],
    ids=["forged-csrf", "no-csrf", "unknown-reason", "no-reason"],
)
def test_choice_refuses_bad_posts(client, cancelled, runtime, form, message):
    url = path_of(cancelled["too_expensive"])
    page = client.get(url)
    if form.pop("csrf", False):
        form["csrf_token"] = csrf_of(page)
    response = client.post(url.split("?")[0] + "/choice", data=form)
    assert response.status_code == 400
    assert response.json["error"].startswith(message)
    assert feedback_keys(runtime) == []


def test_choice_is_post_only(client, cancelled, runtime):
    url = path_of(cancelled["too_expensive"]).split("?")[0] + "/choice?reason=too_expensive"
    assert client.get(url).status_code == 405
    assert feedback_keys(runtime) == []


def test_choice_with_a_bad_token_is_404(client, cancelled, runtime):
    page = client.get(path_of(cancelled["too_expensive"]))
    response = client.post(
        "/feedback/not-a-token/choice", data={"csrf_token": csrf_of(page), "reason": "other"}
    )
    assert response.status_code == 404
    assert feedback_keys(runtime) == []


def test_link_scanners_record_nothing(cancelled, live_server, runtime):
    """curl, wget, HEAD and a script that fetches the page and its script: nothing."""
    for url in cancelled.values():
        url = url.replace(BASE_URL, live_server.url)
        subprocess.run(["curl", "-sSfL", "-o", "/dev/null", url], check=True)
        subprocess.run(["curl", "-sSfI", "-o", "/dev/null", url], check=True)
        subprocess.run(["wget", "-q", "-O", "/dev/null", url], check=True)
        with urllib.request.urlopen(url) as response:
            html = response.read().decode()
        assert 'src="/static/feedback.js"' in html
        with urllib.request.urlopen(f"{live_server.url}/static/feedback.js") as response:
            assert b"visibilityState" in response.read()
    assert feedback_keys(runtime) == []
    assert not runtime.store.is_suppressed("jane.doe@example.com")


@pytest.mark.browser
def test_a_click_in_the_rendered_email_records_the_reason(
    cancelled, outbox, live_server, browser, runtime
):
    html = _email_html(outbox).replace(BASE_URL, live_server.url)
    errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.set_content(html)
    page.get_by_role("link", name="It costs more than it's worth to me").click()
    page.wait_for_url(f"{live_server.url}/feedback/**")
    # The person does nothing else: the visible page records the click by itself.
    noted = page.locator("#noted")
    noted.get_by_text(NOTED).wait_for()
    [record] = runtime.store.cancellations()
    feedback = runtime.store.load_feedback(record.sequence_id)
    assert (feedback.reason, feedback.comment, feedback.no_email) == ("too_expensive", "", False)
    assert page.get_by_role("button", name="Send").is_visible()

    # A later choice on the page replaces it; the optional box still works with Send.
    page.get_by_label("I wasn't using it enough").check()
    noted.get_by_text("Noted: “I wasn't using it enough”.").wait_for()
    assert runtime.store.load_feedback(record.sequence_id).reason == "not_using"
    page.get_by_label("Please don't email me again.").check()
    page.get_by_role("button", name="Send").click()
    page.get_by_role("heading", name="Thank you, truly.").wait_for()
    feedback = runtime.store.load_feedback(record.sequence_id)
    assert (feedback.reason, feedback.no_email) == ("not_using", True)
    assert len(feedback_keys(runtime)) == 1
    assert [e for e in errors if not e.startswith("Failed to load resource")] == []  # favicon


@pytest.mark.browser
def test_a_hidden_page_running_scripts_records_nothing(cancelled, live_server, browser, runtime):
    """A scanner that runs scripts without showing the page (visibilityState hidden)."""
    page = browser.new_page()
    page.add_init_script(
        "Object.defineProperty(document, 'visibilityState', {get: () => 'hidden'});"
    )
    page.goto(cancelled["too_expensive"].replace(BASE_URL, live_server.url))
    assert page.locator("#send").inner_text() == "Confirm"
    page.wait_for_timeout(3000)  # well past the script's dwell time
    assert feedback_keys(runtime) == []


@pytest.mark.browser
def test_without_scripts_the_confirm_button_records(cancelled, live_server, _chromium, runtime):
    context = _chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(cancelled["temporary"].replace(BASE_URL, live_server.url))
        assert feedback_keys(runtime) == []
        page.get_by_role("button", name="Confirm").click()
        page.get_by_role("heading", name="Thank you, truly.").wait_for()
    finally:
        context.close()
    [record] = runtime.store.cancellations()
    assert runtime.store.load_feedback(record.sequence_id).reason == "temporary"
