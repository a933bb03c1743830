"""The Connections record: what each source delivered, through the real receiver and a
real Redis; the page and `connections` command that show it; the MemberPress key an owner
pastes there; the reasons refused deliveries leave in the log."""

from __future__ import annotations

import base64
import logging
from dataclasses import replace

import pytest

from hooks import create_app
from tests import payloads
from tests.conftest import BASE_URL
from worker import webhook_log
from worker.privacy import mask_ip
from worker.webhook_log import HOUR, sum_counts

ADMIN_PASSWORD = "correct horse battery"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}


@pytest.fixture
def settings(settings):
    return replace(settings, admin_password=ADMIN_PASSWORD)


def _deliver_one_of_each(post_hook) -> None:
    stopped = payloads.memberpress()
    assert post_hook.memberpress(stopped).status_code == 202
    assert post_hook.memberpress(stopped).status_code == 200  # duplicate
    ignored = {**payloads.memberpress(), "event": "login"}
    assert post_hook.memberpress(ignored).status_code == 200
    assert post_hook.memberpress(stopped, key="not-the-key").status_code == 401
    # MemberPress drops a webhook on a 4xx, so an unusable body gets 200 with the reason;
    # still refused, and recorded as such.
    assert post_hook.memberpress(raw=b"{not json").get_json()["status"] == "invalid"


def test_each_result_is_recorded_with_its_reason(app, post_hook, runtime):
    _deliver_one_of_each(post_hook)
    redis = runtime.store.redis
    with app.app_context():
        from hooks.connections import connections
        from hooks.services import get_services

        [mp] = [c for c in connections(get_services()) if c.name == "memberpress"]
    a = mp.activity
    assert [e.result for e in a.deliveries] == ["ignored", "duplicate", "queued"]
    assert "not one Farewell acts on" in a.deliveries[0].reason
    assert a.deliveries[1].reason == "already received"
    assert a.deliveries[2].event == "subscription-stopped" and a.deliveries[2].event_id
    assert [(e.reason, e.client) for e in a.refusals] == [
        ("invalid body", "127.0.0.x"),
        ("wrong key", "127.0.0.x"),
    ]
    assert "JSON" in a.refusals[0].detail or "json" in a.refusals[0].detail
    assert a.last_24h == {
        "queued": 1,
        "duplicate": 1,
        "recorded": 0,
        "ignored": 1,
        "refused": 2,
        "ping": 0,
    }
    assert a.last_7d == a.last_24h
    # Compact: no payloads, no secrets, no member addresses in the record.
    record = " ".join(
        redis.lrange(webhook_log.deliveries_key("memberpress"), 0, -1)
        + redis.lrange(webhook_log.refusals_key("memberpress"), 0, -1)
    )
    assert "jane" not in record.lower() and "not-the-key" not in record


def test_lists_are_capped(post_hook, runtime):
    stopped = payloads.memberpress()
    for _ in range(2 * webhook_log.LIST_CAP + 1):
        post_hook.memberpress(key="wrong-key-123")
        post_hook.memberpress(stopped)  # a duplicate after the first: the intake script
    redis = runtime.store.redis
    for key in (webhook_log.refusals_key("memberpress"), webhook_log.deliveries_key("memberpress")):
        assert webhook_log.LIST_CAP <= redis.llen(key) <= 2 * webhook_log.LIST_CAP
    [hour_key] = [k for k in redis.scan_iter(f"{webhook_log.PREFIX}deliveries:counts:*")]
    assert 0 < redis.ttl(hour_key) <= webhook_log.COUNTS_TTL


def test_counts_sum_only_the_window_and_the_source():
    now = 1_000_000 * HOUR + 1800
    buckets = [
        (now // HOUR * HOUR, {"memberpress:queued": "2", "stripe:queued": "5"}),
        (now // HOUR * HOUR - 23 * HOUR, {"memberpress:refused": "1"}),
        (now // HOUR * HOUR - 24 * HOUR, {"memberpress:queued": "7"}),
    ]
    day = sum_counts(buckets, "memberpress", now - 23 * HOUR)
    week = sum_counts(buckets, "memberpress", now - 167 * HOUR)
    assert (day["queued"], day["refused"], week["queued"]) == (2, 1, 9)


@pytest.mark.parametrize(
    ("address", "masked"),
    [("203.0.113.7", "203.0.113.x"), ("2001:db8:1:2::5", "2001:db8:1::/48"), ("", "unknown")],
)
def test_client_addresses_are_masked(address, masked):
    assert mask_ip(address) == masked


def test_page_lists_each_source_its_setting_and_deliveries(client, post_hook):
    _deliver_one_of_each(post_hook)
    page = client.get("/admin/connections", headers=AUTH)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for variable in (
        "FAREWELL_MEMBERPRESS_KEY",
        "FAREWELL_WOOCOMMERCE_SECRET",
        "FAREWELL_STRIPE_SECRET",
    ):
        assert variable in html
    assert f"{BASE_URL}/hooks/memberpress" in html
    assert "Subscription Stopped" in html and "wrong key" in html and "already received" in html
    assert client.get("/admin/connections").status_code == 401


def test_cli_prints_the_same(runner, post_hook):
    _deliver_one_of_each(post_hook)
    result = runner.invoke(args=["connections"])
    assert result.exit_code == 0, result.output
    assert "memberpress: enabled (FAREWELL_MEMBERPRESS_KEY from the environment" in result.output
    assert "refused, wrong key  from 127.0.0.x" in result.output
    assert "refused, invalid body: body is not valid JSON" in result.output
    assert "24 h: queued 1, duplicate 1, recorded 0, ignored 1, refused 2" in result.output


def test_a_key_pasted_on_the_page_enables_memberpress(settings, runtime):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, memberpress_key="")})
    client = app.test_client()
    body = payloads.body(payloads.memberpress())
    hook = {"MEMBERPRESS-WEBHOOK-KEY": "aB3dE5gH7j", "Content-Type": "application/json"}
    disabled = client.post("/hooks/memberpress", data=body, headers=hook)
    assert disabled.status_code == 404
    assert "set FAREWELL_MEMBERPRESS_KEY to enable it" in disabled.get_json()["error"]

    html = client.get("/admin/connections", headers=AUTH).get_data(as_text=True)
    assert "Not connected yet: paste the key MemberPress shows" in html
    token = html.split('name="csrf_token" value="')[1].split('"')[0]
    short = client.post(
        "/admin/connections/memberpress-key", data={"key": "abc", "csrf_token": token}, headers=AUTH
    )
    assert short.status_code == 303 and runtime.store.redis.get(webhook_log.MEMBERPRESS_KEY) is None
    client.post(
        "/admin/connections/memberpress-key",
        data={"key": "aB3dE5gH7j", "csrf_token": token},
        headers=AUTH,
    )
    assert client.post("/hooks/memberpress", data=body, headers=hook).status_code == 202
    services = app.extensions["farewell"]
    services.store.redis.close()
    services.queue.connection.close()


def test_the_environment_key_wins_over_the_page(client, post_hook, runtime):
    runtime.store.redis.set(webhook_log.MEMBERPRESS_KEY, "aB3dE5gH7j")
    assert post_hook.memberpress(key="aB3dE5gH7j").status_code == 401
    assert post_hook.memberpress().status_code == 202
    # So the page offers no form that would do nothing, and says where the key lives.
    html = client.get("/admin/connections", headers=AUTH).get_data(as_text=True)
    assert "the environment (or var/local.env with make run)" in html
    assert 'id="mp-key"' not in html and "wins over a key pasted here" in html


def test_an_unknown_source_names_the_known_ones(client):
    reply = client.post("/hooks/nope", data=b"{}")
    assert reply.status_code == 404 and "memberpress" in reply.get_json()["error"]


def test_every_refusal_reason_reaches_the_log_without_the_secret(post_hook, caplog):
    caplog.set_level(logging.INFO, logger="hooks.receiver")
    post_hook.memberpress(key="wrong-key-456")
    post_hook.memberpress(raw=b"[1,2")
    lines = [r.getMessage() for r in caplog.records]
    assert any("401 refused from 127.0.0.x, wrong key: wrong key" in line for line in lines)
    assert any("refused from 127.0.0.x, invalid body" in line for line in lines)
    assert not any("wrong-key-456" in line for line in lines)


def test_a_body_too_large_is_recorded_as_refused(settings, runtime, app, client):
    big = b"x" * (settings.max_body_bytes + 1)
    hook = {"MEMBERPRESS-WEBHOOK-KEY": "whatever", "Content-Type": "application/json"}
    assert client.post("/hooks/memberpress", data=big, headers=hook).status_code == 413
    [raw] = runtime.store.redis.lrange(webhook_log.refusals_key("memberpress"), 0, -1)
    entry = webhook_log.Entry.from_json(raw)
    assert (entry.reason, entry.client) == ("too large", "127.0.0.x")
    assert str(settings.max_body_bytes) in entry.detail


def test_a_disabled_source_is_logged_with_its_setting(settings, runtime, caplog):
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, standard_secret="")})
    caplog.set_level(logging.INFO, logger="hooks.receiver")
    reply = app.test_client().post("/hooks/standard", data=b"{}")
    assert reply.status_code == 404
    assert "set FAREWELL_STANDARD_SECRET to enable it" in reply.get_json()["error"]
    assert any("FAREWELL_STANDARD_SECRET" in r.getMessage() for r in caplog.records)
    services = app.extensions["farewell"]
    services.store.redis.close()
    services.queue.connection.close()


def test_state_deduplicated_deliveries_and_payments_are_recorded(client, runtime):
    """MemberPress is deduplicated by subscription state: a payment is `recorded`, the same
    state or payment again a `duplicate`, each on the Connections record."""
    from tests import plugin_payloads as mp
    from tests.test_real_plugins import post_mp

    payment = mp.mp_transaction(expires_at="2027-01-01 23:59:59")
    assert post_mp(client, payment).get_json()["status"] == "recorded"
    assert post_mp(client, payment).get_json()["status"] == "duplicate"
    stopped = mp.mp_subscription("subscription-stopped", status="cancelled")
    first = post_mp(client, stopped)
    assert first.status_code == 202
    again = post_mp(client, stopped).get_json()
    assert again["status"] == "duplicate"
    raw = runtime.store.redis.lrange(webhook_log.deliveries_key("memberpress"), 0, -1)
    entries = [webhook_log.Entry.from_json(r) for r in raw]
    assert [e.result for e in entries] == ["duplicate", "queued", "duplicate", "recorded"]
    # The duplicate is listed under the id the reply named: the event holding the state.
    assert entries[0].event_id == again["event_id"] == first.get_json()["event_id"]
    counts = webhook_log.activity(
        runtime.store.redis, ["memberpress"], {"memberpress": "farewell:ping:memberpress"}
    )["memberpress"].last_24h
    assert (counts["recorded"], counts["duplicate"], counts["queued"]) == (1, 2, 1)
