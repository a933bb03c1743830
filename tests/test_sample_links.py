"""A test email's links ("send me a test" in the admin, `templates send-test` in the CLI)
open pages that say they are samples, and record nothing."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from tests.conftest import BASE_URL, stored_keys
from tests.test_admin_templates import ADMIN_EMAIL, AUTH, PASSWORD, _csrf


@pytest.fixture
def settings(settings):
    return replace(settings, admin_password=PASSWORD, admin_email=ADMIN_EMAIL)


def _links(feedback_request, winback) -> tuple[str, str]:
    text = feedback_request.get_body(preferencelist=("plain",)).get_content()
    survey = re.search(rf"{re.escape(BASE_URL)}(/feedback/[^\s?]+)", text).group(1)
    unsubscribe = re.search(
        rf"{re.escape(BASE_URL)}(/unsubscribe/[^>]+)", winback["List-Unsubscribe"]
    )
    return survey, unsubscribe.group(1)


def _check_sample_pages(client, runtime, messages) -> None:
    [winback] = [m for m in messages if m["List-Unsubscribe"]]  # marketing: unsubscribe
    [feedback_request] = [m for m in messages if not m["List-Unsubscribe"]]
    survey, unsubscribe = _links(feedback_request, winback)
    page = client.get(survey)
    assert page.status_code == 200
    assert "This is a sample survey" in page.get_data(as_text=True)
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    answered = client.post(survey, data={"csrf_token": token, "comment": "hi", "no_email": "1"})
    assert answered.status_code == 200 and "This is a sample survey" in answered.get_data(True)
    page = client.get(unsubscribe)
    assert page.status_code == 200 and "sample unsubscribe page" in page.get_data(as_text=True)
    one_click = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    # Nothing recorded: no answer, no suppression.
    assert not [k for k in stored_keys(runtime.store.redis) if "feedback" in k or "suppress" in k]


def test_admin_test_email_links_to_sample_pages(client, outbox, runtime):
    for name in ("feedback_request", "winback"):
        client.post(
            f"/admin/templates/{name}/send-test",
            data={"csrf_token": _csrf(client), "locale": "en"},
            headers=AUTH,
        )
    _check_sample_pages(client, runtime, outbox())


def test_cli_send_test_links_to_sample_pages(client, runner, outbox, runtime):
    for name in ("feedback_request", "winback"):
        result = runner.invoke(args=["templates", "send-test", name])
        assert result.exit_code == 0, result.output
        assert f"sent a test of {name} (en) to {ADMIN_EMAIL} via outbox" in result.output
    _check_sample_pages(client, runtime, outbox())
