"""FAREWELL_METRICS_TOKEN: /metrics and /healthz's details only with the bearer token; the
plain liveness answer stays public (real Redis, and one that is down)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devstack.redis_server import free_port
from hooks import create_app
from hooks.ops_auth import Access, access
from tests.conftest import json_of
from worker.settings import Settings, SettingsError

TOKEN = "metrics-token-5f0c1d9e8a7b"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def guarded(settings, runtime):
    return create_app(
        {"TESTING": True, "SETTINGS": replace(settings, metrics_token=TOKEN)}
    ).test_client()


def test_metrics_need_the_token(guarded):
    anonymous = guarded.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert "FAREWELL_METRICS_TOKEN" in json_of(anonymous)["error"]
    assert b"farewell_" not in anonymous.data
    wrong = guarded.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    scraped = guarded.get("/metrics", headers=BEARER)
    assert scraped.status_code == 200 and b"farewell_redis_up 1" in scraped.data


def test_healthz_says_only_ok_without_the_token(guarded):
    public = guarded.get("/healthz")
    assert public.status_code == 200
    assert json_of(public) == {"status": "ok"}
    detailed = guarded.get("/healthz", headers=BEARER)
    assert detailed.status_code == 200
    assert {"redis", "scheduler", "spool_backlog", "warnings"} <= set(json_of(detailed))
    assert guarded.get("/healthz", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_public_liveness_answer_still_says_when_redis_is_down(settings, runtime):
    down = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0", metrics_token=TOKEN)
    client = create_app({"TESTING": True, "SETTINGS": down}).test_client()
    response = client.get("/healthz")
    assert response.status_code == 503 and json_of(response) == {"status": "unavailable"}
    assert "reason" in json_of(client.get("/healthz", headers=BEARER))


def test_without_a_token_both_stay_public(client):
    assert client.get("/metrics").status_code == 200
    assert "warnings" in json_of(client.get("/healthz"))


def test_access_rules():
    assert access("", None) is Access.PUBLIC
    assert access("", "Bearer x") is Access.PUBLIC
    assert access(TOKEN, None) is Access.ABSENT
    assert access(TOKEN, f"bearer {TOKEN}") is Access.GRANTED
    assert access(TOKEN, f"Basic {TOKEN}") is Access.REFUSED
    assert access(TOKEN, "Bearer é") is Access.REFUSED


def test_a_short_token_is_refused_at_start():
    with pytest.raises(SettingsError, match="FAREWELL_METRICS_TOKEN is shorter than 16"):
        Settings.from_env({"FAREWELL_METRICS_TOKEN": "short"})
    assert Settings.from_env({"FAREWELL_METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
