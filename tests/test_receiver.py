"""POST /hooks/memberpress against a real Redis: every reply code docs/http.md promises."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hooks import create_app
from tests import payloads
from tests.conftest import json_of, stored_keys
from worker import store as keys
from worker.events import member_key
from worker.queues import event_job_id


def test_a_cancellation_is_queued_with_202_and_recorded(post_hook, runtime):
    response = post_hook.memberpress()
    assert response.status_code == 202
    body = json_of(response)
    assert body["status"] == "queued"
    event_id = body["event_id"]
    assert runtime.store.load_event(event_id).member.email == "jane.doe@example.com"
    assert runtime.queue.job_ids == [event_job_id(event_id)]
    assert runtime.store.redis.zscore(keys.PENDING_KEY, event_id) is not None


def test_the_key_may_come_as_a_query_parameter(post_hook):
    assert post_hook.memberpress(via="query").status_code == 202


def test_any_content_type_is_parsed_as_json(post_hook):
    response = post_hook.memberpress(content_type="application/x-www-form-urlencoded")
    assert response.status_code == 202


def test_a_second_delivery_of_the_same_event_is_a_duplicate(post_hook, runtime):
    """Byte-identical, and the subscription's state did not change: a resend."""
    assert post_hook.memberpress().status_code == 202
    second = post_hook.memberpress()
    assert second.status_code == 200
    assert json_of(second)["status"] == "duplicate"
    assert len(runtime.queue) == 1


@pytest.mark.parametrize("key", [None, "", "wrong-key", "mp-test-key-4f1c9"])
def test_missing_or_wrong_key_is_401_and_nothing_is_stored(post_hook, runtime, key):
    response = post_hook.memberpress(key=key)
    assert response.status_code == 401
    assert "authentication failed" in json_of(response)["error"]
    assert stored_keys(runtime.store.redis) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "body is not valid JSON"),
        (b"[]", "body must be a JSON object, not an array"),
        (payloads.body(payloads.memberpress(email="")), "data.member.email is missing"),
    ],
)
def test_malformed_body_is_200_invalid_with_a_message_and_nothing_is_stored(
    post_hook, runtime, raw, message
):
    """MemberPress treats any HTTP reply as delivered: a 4xx would only hide the reason."""
    response = post_hook.memberpress(raw=raw)
    assert response.status_code == 200
    assert json_of(response)["status"] == "invalid"
    assert json_of(response)["reason"].startswith(message)
    assert stored_keys(runtime.store.redis) == []


def test_credentials_are_checked_before_the_body_is_read_as_json(post_hook):
    assert post_hook.memberpress(raw=b"not json", key="wrong").status_code == 401


def test_events_farewell_does_not_act_on_are_200_ignored(post_hook, runtime):
    response = post_hook.memberpress(payloads.memberpress("transaction-completed"))
    assert response.status_code == 200
    assert json_of(response)["status"] == "ignored"
    assert "transaction-completed" in json_of(response)["reason"]
    assert len(runtime.queue) == 0


@pytest.mark.parametrize(
    "name",
    ["subscription-expired", "subscription-paused", "subscription-resumed", "subscription-created"],
)
def test_other_subscription_events_are_recorded(post_hook, runtime, work, name):
    response = post_hook.memberpress(payloads.memberpress(name, status="active"))
    assert response.status_code == 202
    work()
    key = member_key("jane.doe@example.com")
    assert runtime.store.load_member(key).first_name == "Jane"
    expected = {
        "subscription-expired": "expired",
        "subscription-paused": "paused",
        "subscription-resumed": "resumed",
        "subscription-created": "reactivated",
    }
    assert runtime.store.member_field(key, "last_event") == expected[name]
    assert runtime.store.stale_pending(older_than=-1) == []


def test_body_over_the_limit_is_413(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, max_body_bytes=1024)})
    response = app.test_client().post(
        "/hooks/memberpress",
        data=b"{" + b" " * 2048 + b"}",
        headers={"MEMBERPRESS-WEBHOOK-KEY": settings.memberpress_key},
    )
    assert response.status_code == 413
    assert "larger than 1024 bytes" in json_of(response)["error"]


def test_unknown_source_is_404(client):
    response = client.post("/hooks/nosuchplugin", data=b"{}")
    assert response.status_code == 404
    assert "nosuchplugin" in json_of(response)["error"]


def test_a_source_without_its_secret_is_disabled_not_open(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, memberpress_key="")})
    response = app.test_client().post(
        "/hooks/memberpress", data=payloads.body(payloads.memberpress())
    )
    assert response.status_code == 404
    assert stored_keys(runtime.store.redis) == []


def test_get_is_405(client):
    assert client.get("/hooks/memberpress").status_code == 405


def test_healthz_is_200_when_redis_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert json_of(response)["status"] == "ok"
