"""Commercial mail carries the sender's postal address (CAN-SPAM), and subjects and
preheaders are text, not HTML. Real templates, real Redis, real outbox."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests import payloads
from worker import process as worker_process
from worker.compliance import marketing_steps, require_postal_address
from worker.playbook import load_playbook
from worker.render import Renderer
from worker.runtime import Runtime, set_runtime
from worker.settings import SettingsError

ADDRESS = "Example Club, 1 Main St, Springfield"


def test_the_winback_footer_shows_the_postal_address_in_both_locales(
    post_hook, work, clock, outbox
):
    post_hook.memberpress(payloads.memberpress(subscription_id="1"))
    post_hook.memberpress(
        payloads.memberpress(subscription_id="2", email="joao@example.com", locale="pt_BR")
    )
    work()
    clock.advance(days=15)
    messages = outbox()
    feedback = [m for m in messages if "List-Unsubscribe" not in m]
    winbacks = [m for m in messages if "List-Unsubscribe" in m]
    assert len(feedback) == 2 and len(winbacks) == 2
    for message in winbacks:
        assert ADDRESS in message.get_body(("html",)).get_content()
        assert ADDRESS in message.get_body(("plain",)).get_content()
    for message in feedback:  # transactional mail needs none
        assert ADDRESS not in message.get_body(("html",)).get_content()


def test_marketing_steps_are_listed_by_plan(settings):
    playbook = load_playbook(settings.playbook_path, templates_dir=settings.templates_dir)
    assert marketing_steps(playbook) == ["default: winback"]


def test_without_the_address_marketing_steps_are_refused(settings):
    playbook = load_playbook(settings.playbook_path, templates_dir=settings.templates_dir)
    with pytest.raises(SettingsError, match=r"POSTAL_ADDRESS is not set.*default: winback"):
        require_postal_address(replace(settings, postal_address="  "), playbook)
    require_postal_address(settings, playbook)  # set: fine


def test_playbook_check_refuses_marketing_without_the_address(app, settings, runner):
    app.extensions["farewell"].settings = replace(settings, postal_address="")
    result = runner.invoke(args=["playbook", "check"])
    assert result.exit_code == 1
    assert "FAREWELL_POSTAL_ADDRESS is not set" in result.output
    assert "CAN-SPAM" in result.output


def test_the_worker_refuses_to_start_without_the_address(settings):
    set_runtime(Runtime(replace(settings, postal_address="")))
    try:
        with pytest.raises(SettingsError, match="FAREWELL_POSTAL_ADDRESS is not set"):
            worker_process.preflight()
        assert worker_process.main() == 2
    finally:
        set_runtime(None)


@pytest.mark.parametrize("locale", ["en", "pt_BR"])
def test_subjects_and_preheaders_are_text_not_html(settings, locale):
    renderer = Renderer(settings.templates_dir, "en")
    context = {
        "first_name": "Tom & Jerry",
        "last_name": "",
        "membership_title": "Gold <Club> & Co",
        "access_ends_on": None,
        "site_name": "Example Club",
        "sender_name": "Ana",
        "feedback_url": "https://x.example/f",
        "unsubscribe_url": None,
        "postal_address": None,
        "reasons": [],
        "coupon": None,
        "coupon_offer": None,
        "feedback_given": False,
    }
    email = renderer.render("feedback_request", context, locale=locale)
    assert "Tom & Jerry" in email.subject and "&amp;" not in email.subject
    assert "Gold <Club> & Co" in email.preheader and "&lt;" not in email.preheader
    assert "Tom &amp; Jerry" in email.html  # the HTML body stays escaped
    assert "Gold &lt;Club&gt; &amp; Co" in email.html


@pytest.mark.parametrize(
    ("locale", "words"), [("en", "our community"), ("pt_BR", "nossa comunidade")]
)
def test_an_unset_site_name_is_a_phrase_in_the_members_language(settings, locale, words):
    unnamed = replace(settings, site_name="")
    assert unnamed.site_name_in(locale) == words
    assert replace(settings, site_name="Clube").site_name_in(locale) == "Clube"
