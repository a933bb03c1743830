"""The live safety net (worker/safety.py): a template broken while the service runs never
stops an email; the failure shows on /healthz, /metrics and the admin pages until fixed."""

from __future__ import annotations

import base64
import os
import time
from dataclasses import replace

import pytest

from hooks import create_app
from tests import payloads
from tests.conftest import HookPoster, json_of, parts
from tests.rq_helpers import run_queued
from worker import safety
from worker.process import _sample_check
from worker.runtime import Runtime, set_runtime

PASSWORD = "a-long-admin-password-for-tests"
THANKS = "Thank you for being with us"
UNCLOSED_IF = "{% if first_name %}<p>Hi there</p>\n"


@pytest.fixture
def stack(template_copy):
    """Web app and in-process worker on a writable copy of the templates."""
    settings = replace(template_copy.settings, admin_password=PASSWORD)
    rt = Runtime(settings)
    set_runtime(rt)
    app = create_app({"TESTING": True, "SETTINGS": settings})
    yield _Stack(template_copy, rt, app)
    set_runtime(None)
    rt.close()
    app.extensions["farewell"].store.redis.close()
    app.extensions["farewell"].queue.connection.close()


class _Stack:
    def __init__(self, files, rt, app) -> None:
        self.files, self.rt, self.app = files, rt, app
        self.client = app.test_client()
        self.sent = 0

    def edit(self, name: str, old: str, new: str) -> None:
        """Change a file as an editor would, with a later modification time (so the
        change is seen whatever the file system's clock resolution)."""
        self.files.edit(name, old, new)
        path = self.files.path(name)
        later = time.time() + 2 + self.sent
        os.utime(path, (later, later))

    def cancel(self) -> str:
        """A new member cancels; returns the HTML and text of the email they got."""
        self.sent += 1
        n = self.sent
        body = payloads.memberpress(
            email=f"member{n}@example.com", member_id=100 + n, subscription_id=f"s{n}"
        )
        reply = HookPoster(self.client).memberpress(body)
        assert reply.status_code == 202, reply.data
        run_queued(self.rt.queue)
        outbox = self.rt.settings.outbox_dir
        mine = [p for p in outbox.glob("*.eml") if f"member{n}@" in p.read_text()]
        assert len(mine) == 1, f"member{n} got {len(mine)} emails"
        from tests.conftest import read_eml

        html, text = parts(read_eml(mine[0]))
        return html + "\n" + text

    def health(self) -> dict:
        return json_of(self.client.get("/healthz"))

    def template_warnings(self) -> list[str]:
        return [w for w in self.health()["warnings"] if "failed at send time" in w]

    def admin(self, path: str) -> str:
        token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        reply = self.client.get(path, headers={"Authorization": f"Basic {token}"})
        assert reply.status_code == 200, reply.data[:300]
        return reply.get_data(as_text=True)


def test_a_file_broken_while_running_still_sends_the_last_good_version(stack):
    stack.edit("en/feedback_request.html", THANKS, "Many thanks for being with us")
    assert "Many thanks for being with us" in stack.cancel()  # edits are seen live
    assert stack.template_warnings() == []

    stack.edit("en/feedback_request.html", "<p>If you have", UNCLOSED_IF + "<p>If you have")
    got = stack.cancel()
    assert "Many thanks for being with us" in got  # the last version that rendered
    assert "Hi there" not in got

    [failure] = stack.health()["template_failures"]
    assert failure["email"] == "en/feedback_request"
    assert failure["fallback"] == "last_good"
    assert failure["where"].startswith("en/feedback_request.html:")
    assert any("en/feedback_request failed at send time" in w for w in stack.template_warnings())
    metrics = stack.client.get("/metrics").get_data(as_text=True)
    assert "farewell_template_failures 1" in metrics
    assert (
        'farewell_template_fallbacks_total{email="en/feedback_request",used="last_good"} 1'
        in metrics
    )
    assert "failed at send time" in stack.admin("/admin/")
    gallery = stack.admin("/admin/templates")
    assert "Failing at send time: en/feedback_request.html:" in gallery

    # Fixing the file clears the failure at the next send, with the new words.
    stack.edit("en/feedback_request.html", UNCLOSED_IF, "")
    assert "Many thanks for being with us" in stack.cancel()
    assert stack.health()["template_failures"] == []
    assert stack.template_warnings() == []
    assert "farewell_template_failures 0" in stack.client.get("/metrics").get_data(as_text=True)


def test_the_start_up_check_keeps_a_version_for_emails_not_sent_yet(stack):
    safety.remember_all(stack.rt.renderer)  # what the worker's preflight does
    stack.edit("en/_layout.html", "{% block footer %}", "{% block footer %}{{ site_nam }}")
    got = stack.cancel()
    assert THANKS in got
    [failure] = stack.health()["template_failures"]
    assert failure["where"].startswith("en/_layout.html:")  # the file at fault, not the email
    assert "site_nam" in failure["error"]


def test_without_a_saved_version_the_shipped_default_goes_out(stack):
    # Nothing rendered yet in this Redis: the copy's broken file falls back to the files
    # that ship with Farewell.
    stack.edit("en/feedback_request.txt", "{% block content %}", "{% block content %}{% for %}")
    got = stack.cancel()
    assert THANKS in got
    [failure] = stack.health()["template_failures"]
    assert failure["fallback"] == "shipped_default"
    assert "syntax error" in failure["error"]


def test_when_nothing_renders_the_send_fails_loudly(stack, tmp_path):
    stack.rt.renderer.shipped_dir = tmp_path / "nothing-shipped"
    stack.edit("en/feedback_request.txt", "{% block content %}", "{% block content %}{% for %}")
    with pytest.raises(AssertionError, match="got 0 emails"):
        stack.cancel()
    [failure] = stack.health()["template_failures"]
    assert failure["fallback"] == "none"
    assert "emails are NOT going out" in " ".join(stack.template_warnings())


def test_a_marketing_email_that_loses_its_unsubscribe_link_falls_back(stack):
    renderer = stack.rt.renderer
    context = _sample(stack, "winback")
    url = context["unsubscribe_url"]
    assert url in renderer.render("winback", context, locale="en").text  # kept as good
    stack.edit("en/_layout.txt", "{{ unsubscribe_url }}", "(link removed)")
    email = renderer.render("winback", context, locale="en")
    assert url in email.text and "(link removed)" not in email.text
    [failure] = stack.health()["template_failures"]
    assert failure["email"] == "en/winback" and failure["fallback"] == "last_good"
    assert "the text part does not show {{ unsubscribe_url }}" in failure["error"]


def test_a_failure_for_some_members_stays_until_the_content_changes(stack):
    """A template that fails only for some data is not cleared by a member it works for."""
    stack.edit(
        "en/feedback_request.html",
        "<p>If you have",
        "{% if first_name == 'Member' %}{{ nope }}{% endif %}<p>If you have",
    )
    assert THANKS in stack.cancel()  # first_name Jane: renders, kept as last good
    renderer = stack.rt.renderer
    context = _sample(stack) | {"first_name": "Member"}
    email = renderer.render("feedback_request", context, locale="en")
    assert THANKS in email.html  # the shipped default (the saved version fails too)
    assert stack.health()["template_failures"][0]["fallback"] == "shipped_default"
    assert THANKS in stack.cancel()  # Jane again: same content, the failure stays
    assert len(stack.health()["template_failures"]) == 1


def test_the_sweep_clears_a_fixed_file_before_anyone_is_sent_it(stack):
    stack.cancel()
    stack.edit("en/feedback_request.html", "<p>If you have", UNCLOSED_IF + "<p>If you have")
    stack.cancel()
    assert safety.recheck(stack.rt.renderer, _sample_check) == []  # still broken
    assert len(stack.health()["template_failures"]) == 1
    stack.edit("en/feedback_request.html", UNCLOSED_IF, "")
    assert safety.recheck(stack.rt.renderer, _sample_check) == ["en/feedback_request"]
    assert stack.health()["template_failures"] == []


def test_emails_on_disk_lists_every_pair(template_copy):
    template_copy.write("memberships/gold/en/winback.html", "x")
    template_copy.write("memberships/gold/en/winback.txt", "x")
    pairs = safety.emails_on_disk(template_copy.root)
    assert ("en/winback.html", "en/winback.txt") in pairs
    assert ("memberships/gold/en/winback.html", "memberships/gold/en/winback.txt") in pairs
    assert not [html for html, _ in pairs if "/_" in html or "/" not in html]


def _sample(stack, name: str = "feedback_request") -> dict:
    from worker.samples import sample_context, sample_step

    rt = stack.rt
    step = sample_step(rt.playbook, name, None)
    return sample_context(rt.settings, step, rt.reasons, locale="en", membership_id=None)
