"""/admin/templates/<name>/edit: edit, preview, save (checked), versions, diff, rollback,
export; what the worker sends follows the published version. Test client and Chromium."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from pathlib import Path

import pytest

from hooks import create_app
from tests import payloads
from tests.conftest import HookPoster, parts, read_eml
from tests.rq_helpers import run_queued
from worker.runtime import Runtime, set_runtime
from worker.versions import MAX_PART_CHARS, join_html, split_html

PASSWORD = "editor-admin-password-long"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
EDIT = "/admin/templates/feedback_request/edit"
OLD = "Thank you for being with us"
NEW = "We are so grateful you were with us"


@pytest.fixture
def editor(template_copy):
    settings = replace(template_copy.settings, admin_password=PASSWORD)
    rt = Runtime(settings)
    rt.renderer.loader.refresh = 0  # a worker re-reads the published versions every second
    set_runtime(rt)
    app = create_app({"TESTING": True, "SETTINGS": settings})
    yield _Editor(template_copy, rt, app)
    set_runtime(None)
    rt.close()
    app.extensions["farewell"].store.redis.close()
    app.extensions["farewell"].queue.connection.close()


class _Editor:
    def __init__(self, files, rt, app) -> None:
        self.files, self.rt, self.app = files, rt, app
        self.client = app.test_client()
        self.members = 0

    def page(self, path: str = EDIT) -> str:
        reply = self.client.get(path, headers=AUTH)
        assert reply.status_code == 200, reply.data[:300]
        return reply.get_data(as_text=True)

    def fields(self, path: str = EDIT) -> dict[str, str]:
        page = self.page(path)
        import html

        out = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)}
        for name in ("subject", "preheader", "note"):
            out[name] = html.unescape(re.search(rf'name="{name}" value="([^"]*)"', page).group(1))
        for name in ("html", "text"):
            found = re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
            out[name] = html.unescape(found.group(1))
        out["locale"] = "en"
        return out

    def post(self, path: str = EDIT, **changes: str):
        data = {**self.fields(), **changes}
        return self.client.post(path, data=data, headers=AUTH)

    def cancel(self) -> str:
        self.members += 1
        n = self.members
        body = payloads.memberpress(
            email=f"m{n}@example.com", member_id=300 + n, subscription_id=f"e{n}"
        )
        assert HookPoster(self.client).memberpress(body).status_code == 202
        run_queued(self.rt.queue)
        [eml] = [
            p for p in self.rt.settings.outbox_dir.glob("*.eml") if f"m{n}@example" in p.read_text()
        ]
        html, text = parts(read_eml(eml))
        return html + text


def test_split_and_join_keep_the_file_as_it_was():
    source = Path("email_templates/en/winback.html").read_text()
    subject, preheader, body = split_html(source)
    assert "hope you are well" in subject and "No need to reply" in preheader
    assert "block subject" not in body and body.startswith('{% extends "en/_layout.html" %}\n')
    assert join_html(subject, preheader, body) == source
    assert join_html("Hi", "", "<p>x</p>") == "{% block subject %}Hi{% endblock %}\n<p>x</p>"


def test_the_editor_needs_the_admin_password(editor):
    assert editor.client.get(EDIT).status_code == 401
    assert editor.client.post(EDIT, data={}).status_code == 401


def test_the_editor_shows_the_four_fields_and_a_preview(editor):
    fields = editor.fields()
    assert fields["subject"].startswith("Thank you{% if first_name %}")
    assert "membership is cancelled" in fields["preheader"]
    assert OLD in fields["html"] and "block subject" not in fields["html"]
    assert OLD in fields["text"]
    page = editor.page()
    assert 'id="preview-subject">Thank you, Maria — may we ask one thing?<' in page
    assert 'class="frame-phone"' in page and 'class="frame-desktop"' in page
    assert "Goes out: right after the cancellation" in page


def test_preview_renders_the_draft_with_the_memberships_real_title(editor):
    HookPoster(editor.client).memberpress(
        payloads.memberpress(membership_id="3006", membership_title="Atelier")
    )
    run_queued(editor.rt.queue)
    path = EDIT + "?membership=3006"
    data = {**editor.fields(path), "membership": "3006", "action": "preview"}
    data["html"] = data["html"].replace(OLD, NEW)
    reply = editor.client.post(EDIT, data=data, headers=AUTH)
    assert reply.status_code == 200
    page = reply.get_data(as_text=True)
    assert NEW in page  # in the field
    token = re.search(r"/draft/([\w-]+)\?", page).group(1)
    frame = editor.client.get(
        f"/admin/templates/feedback_request/draft/{token}?locale=en&membership=3006", headers=AUTH
    )
    assert frame.status_code == 200 and NEW in frame.get_data(as_text=True)
    assert "Atelier" in frame.get_data(as_text=True)  # the title learned from the events
    assert "sandbox" in frame.headers["Content-Security-Policy"]
    assert "Your Atelier membership has been cancelled" in page  # the text part preview
    assert not list(editor.rt.store.template_versions("en/feedback_request"))  # not saved


def test_save_publishes_a_version_the_worker_sends_and_rollback_brings_the_old_words(editor):
    assert OLD in editor.cancel()
    fields = editor.fields()
    reply = editor.post(
        action="save",
        note="warmer opening",
        html=fields["html"].replace(OLD, NEW),
        text=fields["text"].replace(OLD, NEW),
    )
    assert reply.status_code == 303, reply.get_data(as_text=True)[:2000]
    page = editor.page()
    assert "Saved and published version 2 of en/feedback_request." in page
    assert "warmer opening" in page and "before the first edit" in page
    got = editor.cancel()
    assert NEW in got and OLD not in got

    history = editor.page("/admin/templates/feedback_request/history?locale=en&a=1&b=2")
    assert f'<span class="diff-add">+&lt;h1&gt;{NEW}' in history
    assert f'<span class="diff-del">-&lt;h1&gt;{OLD}' in history

    csrf = editor.fields()["csrf_token"]
    reply = editor.client.post(
        "/admin/templates/feedback_request/publish",
        data={"csrf_token": csrf, "locale": "en", "version": "1"},
        headers=AUTH,
    )
    assert reply.status_code == 303
    got = editor.cancel()
    assert OLD in got and NEW not in got
    assert "Published version 1" in editor.page()


def test_a_broken_save_is_refused_with_its_line(editor):
    fields = editor.fields()
    html = fields["html"].replace("<p>If you have", "{% if first_name %}\n<p>If you have")
    reply = editor.post(action="save", html=html)
    assert reply.status_code == 422
    page = reply.get_data(as_text=True)
    # The line in the saved file (the subject and preheader blocks come first).
    line = (
        join_html(fields["subject"], fields["preheader"], html)
        .splitlines()
        .index("{% if first_name %}")
        + 1
    )
    assert f"en/feedback_request.html:{line}: {{% if %}} opened on line {line} is never closed" in (
        page
    )
    assert "Not saved" in page
    assert "{% if first_name %}\n&lt;p&gt;If you have" in page  # the typed text is kept
    assert editor.rt.store.template_versions("en/feedback_request") == []


def test_a_save_with_an_unknown_variable_is_refused_with_did_you_mean(editor):
    fields = editor.fields()
    reply = editor.post(
        action="save", text=fields["text"].replace("{{ site_name }}", "{{ site_nam }}")
    )
    assert reply.status_code == 422
    assert "Did you mean {{ site_name }}?" in reply.get_data(as_text=True)


def test_warnings_do_not_block_a_save(editor):
    fields = editor.fields()
    html = fields["html"].replace(OLD, NEW)  # the text part keeps the old sentence: drift
    reply = editor.post(action="save", html=html)
    assert reply.status_code == 303
    page = editor.page()
    assert "Warning: en/feedback_request.txt: warning: the text part drifts" in page


def test_a_save_without_the_csrf_token_or_too_big_is_refused(editor):
    reply = editor.post(action="save", csrf_token="nope")
    assert reply.status_code == 400
    reply = editor.post(action="save", html="x" * (MAX_PART_CHARS + 1))
    assert reply.status_code == 413
    assert editor.rt.store.template_versions("en/feedback_request") == []


def test_unknown_email_locale_or_version(editor):
    assert editor.client.get("/admin/templates/nope/edit", headers=AUTH).status_code == 404
    assert editor.client.get(EDIT + "?locale=xx", headers=AUTH).status_code == 400
    assert editor.client.get(EDIT + "?membership=../x", headers=AUTH).status_code == 400
    history = "/admin/templates/feedback_request/history?locale=en"
    assert editor.client.get(history, headers=AUTH).status_code == 404
    csrf = editor.fields()["csrf_token"]
    reply = editor.client.post(
        "/admin/templates/feedback_request/publish",
        data={"csrf_token": csrf, "locale": "en", "version": "7"},
        headers=AUTH,
    )
    assert reply.status_code == 404


def test_a_membership_version_only_changes_that_membership(editor):
    path = EDIT + "?membership=3006"
    data = {**editor.fields(path), "membership": "3006", "action": "save"}
    data["html"] = data["html"].replace(OLD, NEW)
    data["text"] = data["text"].replace(OLD, NEW)
    assert editor.client.post(EDIT, data=data, headers=AUTH).status_code == 303
    assert editor.rt.store.published_templates() == {"memberships/3006/en/feedback_request": 2}
    got = editor.cancel()  # membership 3006 (the payload's default)
    assert NEW in got
    HookPoster(editor.client).memberpress(
        payloads.memberpress(
            email="other@example.com", member_id=999, subscription_id="o1", membership_id="77"
        )
    )
    run_queued(editor.rt.queue)
    [eml] = [p for p in editor.rt.settings.outbox_dir.glob("*.eml") if "other@" in p.read_text()]
    assert OLD in parts(read_eml(eml))[0]


def test_unpublish_sends_the_file_again(editor):
    fields = editor.fields()
    editor.post(
        action="save", html=fields["html"].replace(OLD, NEW), text=fields["text"].replace(OLD, NEW)
    )
    csrf = editor.fields()["csrf_token"]
    reply = editor.client.post(
        "/admin/templates/feedback_request/unpublish",
        data={"csrf_token": csrf, "locale": "en"},
        headers=AUTH,
    )
    assert reply.status_code == 303
    assert editor.rt.store.published_templates() == {}
    assert OLD in editor.cancel()


def test_export_writes_the_published_versions_as_files(editor, tmp_path):
    fields = editor.fields()
    editor.post(
        action="save", html=fields["html"].replace(OLD, NEW), text=fields["text"].replace(OLD, NEW)
    )
    out = tmp_path / "exported"
    result = editor.app.test_cli_runner().invoke(args=["templates", "export", str(out)])
    assert result.exit_code == 0, result.output
    assert "en/feedback_request.html" in result.output
    assert NEW in (out / "en" / "feedback_request.html").read_text()
    assert NEW in (out / "en" / "feedback_request.txt").read_text()
    assert "{% block subject %}" in (out / "en" / "feedback_request.html").read_text()


# --- in a real browser ----------------------------------------------------------------------


@pytest.fixture
def served(editor):
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, editor.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.mark.browser
def test_edit_preview_save_send_rollback_in_chromium(browser, served, editor, tmp_path):
    browser.set_extra_http_headers(AUTH)
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    assert OLD in editor.cancel()
    page.goto(f"{served}{EDIT}?locale=en")

    # Edit and preview: the frames and the text part show the draft, nothing is saved.
    html = page.locator("textarea[name=html]")
    html.fill(html.input_value().replace(OLD, NEW))
    text = page.locator("textarea[name=text]")
    text.fill(text.input_value().replace(OLD, NEW))
    page.locator("input[name=subject]").fill("A small thank-you, {{ first_name }}")
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#preview-subject").inner_text() == "A small thank-you, Maria"
    for frame_class in ("frame-phone", "frame-desktop"):
        heading = page.frame_locator(f"iframe.{frame_class}").locator("h1")
        heading.wait_for(state="visible")
        assert heading.inner_text() == f"{NEW}, Maria."
    assert NEW in page.locator("#preview-text").inner_text()
    assert editor.rt.store.template_versions("en/feedback_request") == []
    for width in (390, 1280):
        # Tall enough that the frames are painted inside the viewport.
        page.set_viewport_size({"width": width, "height": 3200 if width < 900 else 1600})
        shot = tmp_path / f"editor-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # no sideways scroll
    phone = page.locator("iframe.frame-phone").bounding_box()
    desktop = page.locator("iframe.frame-desktop").bounding_box()
    assert phone["width"] < desktop["width"]

    # Save: a new cancellation gets the new words.
    page.locator("input[name=note]").fill("warmer")
    page.get_by_role("button", name="Save and publish").click()
    assert "Saved and published version 2" in page.locator(".tpl-ok").inner_text()
    got = editor.cancel()
    assert NEW in got and OLD not in got

    # A broken save is refused with its line; the typed text stays in the field.
    html = page.locator("textarea[name=html]")
    broken = html.input_value().replace("<p>If you have", "{% for reason in %}\n<p>If you have")
    html.fill(broken)
    page.get_by_role("button", name="Save and publish").click()
    problems = page.locator("#edit-problems").inner_text()
    assert re.search(r"en/feedback_request\.html:\d+: ", problems), problems
    assert "Not saved" in problems
    assert "{% for reason in %}" in page.locator("textarea[name=html]").input_value()
    page.screenshot(path=str(tmp_path / "editor-refused.png"), full_page=True)

    # Rollback: version 1 (what members got before) goes out again.
    page.goto(f"{served}{EDIT}?locale=en")
    page.locator("#version-1").get_by_role("button", name="Publish this version").click()
    assert "Published version 1" in page.locator(".tpl-ok").inner_text()
    got = editor.cancel()
    assert OLD in got and NEW not in got

    # History: the diff between the two versions.
    page.get_by_role("button", name="Show the differences").click()
    assert NEW in page.locator(".diff-add").first.inner_text() or any(
        NEW in t for t in page.locator(".diff-add").all_inner_texts()
    )
    assert not [e for e in errors if "Content Security Policy" in e], errors


@pytest.mark.browser
def test_the_preview_follows_typing_without_a_click(browser, served, editor):
    from playwright.sync_api import expect

    browser.set_extra_http_headers(AUTH)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))  # the script's own errors
    page.on(
        "console", lambda msg: "Content Security Policy" in msg.text and errors.append(msg.text)
    )
    page.goto(f"{served}{EDIT}?locale=en")
    page.locator("input[name=subject]").fill("Live subject for {{ first_name }}")
    expect(page.locator("#preview-subject")).to_have_text("Live subject for Maria", timeout=30_000)
    text = page.locator("textarea[name=text]")
    text.fill(text.input_value().replace(OLD, "Typed just now"))
    expect(page.locator("#preview-text")).to_contain_text("Typed just now", timeout=30_000)
    assert page.url.endswith(f"{EDIT}?locale=en")  # no page load: the script did it
    assert editor.rt.store.template_versions("en/feedback_request") == []
    assert not errors, errors


def test_a_save_that_renders_clears_a_send_time_failure(editor):
    from worker import safety
    from worker.process import _sample_check

    editor.rt.store.record_template_failure(
        "en/feedback_request",
        {"file": "en/feedback_request.html", "line": 3, "error": "x", "digest": "old"},
    )
    assert editor.rt.store.template_failures()
    fields = editor.fields()
    reply = editor.post(
        action="save", html=fields["html"].replace(OLD, NEW), text=fields["text"].replace(OLD, NEW)
    )
    assert reply.status_code == 303
    # The worker's sweep (every few seconds) re-checks a failing email whose content changed.
    assert safety.recheck(editor.rt.renderer, _sample_check) == ["en/feedback_request"]
    assert editor.rt.store.template_failures() == {}


def test_a_published_version_that_fails_at_send_time_falls_back_to_the_file(editor):
    """A version saved before a layout change can fail later: members get the file."""
    fields = editor.fields()
    html = fields["html"].replace(OLD, NEW + " {{ sample_only }}")
    store = editor.rt.store
    # Straight into the store, as if it had passed the check against an older layout.
    from worker.versions import join_html

    source = join_html(fields["subject"], fields["preheader"], html)
    store.add_template_version(
        "en/feedback_request",
        {"at": 1.0, "note": "", "html": source, "text": fields["text"]},
        publish=True,
    )
    got = editor.cancel()
    assert OLD in got and NEW not in got
    [failure] = store.template_failures().values()
    assert failure["fallback"] == "shipped_default" and "sample_only" in failure["error"]
