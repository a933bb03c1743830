"""A real headless Chromium answers the survey from a real generated email, then the owner
sees the answer on the admin dashboard, with the member's `<script>` shown as text."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import BASE_URL
from tests.fixtures_insights import ADMIN_PASSWORD

pytestmark = pytest.mark.browser

COMMENT = "Lovely people. <script>alert(1)</script> Just too busy this year."


@pytest.fixture
def settings(settings):
    return replace(settings, admin_password=ADMIN_PASSWORD)


def test_member_answers_in_chromium_and_the_owner_sees_it(
    post_hook, work, survey_links, live_server, browser, _chromium, runtime, tmp_path
):
    post_hook.memberpress()
    work()
    link = survey_links()["too_expensive"].replace(BASE_URL, live_server.url)

    dialogs: list[str] = []
    errors: list[str] = []  # CSP violations and script errors show up here
    bad: list[str] = []  # responses >= 400

    def watch(page):
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("response", lambda r: bad.append(r.url) if r.status >= 400 else None)
        return page

    page = watch(browser.new_page())
    page.goto(link)
    assert page.locator("#reason-too_expensive").is_checked()
    page.get_by_label("I wasn't using it enough").check()
    page.get_by_label("Anything you would like to add? (optional)").fill(COMMENT)
    page.screenshot(path=tmp_path / "feedback.png", full_page=True)
    page.get_by_role("button", name="Send").click()
    page.get_by_role("heading", name="Thank you, truly.").wait_for()
    page.screenshot(path=tmp_path / "thanks.png", full_page=True)

    [record] = runtime.store.cancellations()
    answer = runtime.store.load_feedback(record.sequence_id)
    assert (answer.reason, answer.comment) == ("not_using", COMMENT)

    owner = _chromium.new_context(
        viewport={"width": 1200, "height": 900},
        http_credentials={"username": "admin", "password": ADMIN_PASSWORD},
    )
    try:
        admin = watch(owner.new_page())
        response = admin.goto(f"{live_server.url}/admin")
        assert response is not None and response.status == 200
        row = admin.locator('tr[data-reason="not_using"]')
        assert "I wasn't using it enough" in row.inner_text()
        assert row.locator("td[data-count]").inner_text() == "1"
        assert admin.locator('[data-figure="response_rate"]').inner_text() == "100%"
        assert admin.locator(".comments blockquote").inner_text() == COMMENT
        assert admin.locator("script").count() == 0
        assert admin.locator("svg.chart rect.bar").count() == 1
        admin.screenshot(path=tmp_path / "admin.png", full_page=True)
    finally:
        owner.close()
    assert dialogs == []  # no alert ran, on either page
    # Nothing was blocked or broken (the browser's own favicon probe 404s; not ours).
    assert [u for u in bad if not u.endswith("/favicon.ico")] == []
    assert [e for e in errors if not e.startswith("Failed to load resource")] == []
    for name in ("feedback.png", "thanks.png", "admin.png"):
        assert (tmp_path / name).stat().st_size > 1000
