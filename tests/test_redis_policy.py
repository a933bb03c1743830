"""A Redis that would evict or forget Farewell's data: refused or warned about, at start
(web and worker) and in /healthz, against real redis-server processes so configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from devstack.redis_server import RedisServer
from hooks import create_app
from tests import payloads
from tests.conftest import MEMBERPRESS_KEY, SECRET_KEY, json_of
from worker.redis_policy import EvictingRedis, assess, check
from worker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("config", "allowed", "refused", "warned"),
    [
        ({"maxmemory-policy": "noeviction", "appendonly": "yes", "save": ""}, False, False, []),
        ({"maxmemory-policy": "noeviction", "appendonly": "no", "save": "60 1"}, False, False, []),
        ({"maxmemory-policy": "allkeys-lru", "appendonly": "yes", "save": ""}, False, True, []),
        ({"maxmemory-policy": "allkeys-lfu", "appendonly": "yes"}, True, False, ["allkeys-lfu"]),
        ({"maxmemory-policy": "volatile-ttl", "appendonly": "yes"}, False, False, ["volatile"]),
        ({"maxmemory-policy": "noeviction", "appendonly": "no", "save": ""}, 0, 0, ["no pers"]),
        (None, False, False, ["could not read"]),
    ],
)
def test_assess_refuses_allkeys_and_warns_on_volatile_no_persistence_or_no_answer(
    config, allowed, refused, warned
):
    result = assess(config, allow_evicting=allowed)
    assert bool(result.refusal) == bool(refused)
    assert len(result.warnings) == len(warned)
    for fragment, warning in zip(warned, result.warnings, strict=True):
        assert fragment in warning


@pytest.fixture
def server(tmp_path: Path, request) -> Iterator[RedisServer]:
    """A redis-server of this test's own, started with the keyword arguments given by
    `@pytest.mark.parametrize("server", [{...}], indirect=True)`."""
    options = getattr(request, "param", {})
    srv = RedisServer(tmp_path / "redis", **options).start()
    yield srv
    srv.kill()


def _app(settings: Settings, url: str, **overrides):
    return create_app({"TESTING": True, "SETTINGS": replace(settings, redis_url=url, **overrides)})


def _close(app) -> None:
    services = app.extensions["farewell"]
    services.store.redis.close()
    services.queue.connection.close()


def test_the_embedded_redis_of_make_run_passes_the_check(server):
    client = redis.Redis.from_url(server.url, decode_responses=True)
    result = check(client)
    client.close()
    assert result.config["maxmemory-policy"] == "noeviction"
    assert (result.refusal, result.warnings) == ("", [])


@pytest.mark.parametrize("server", [{"maxmemory_policy": "allkeys-lru"}], indirect=True)
def test_the_web_refuses_to_start_on_an_allkeys_policy_unless_allowed(
    server, settings, runtime, caplog
):
    with pytest.raises(EvictingRedis, match=r"allkeys-lru.*FAREWELL_ALLOW_EVICTING_REDIS=1"):
        _app(settings, server.url)

    app = _app(settings, server.url, allow_evicting_redis=True)
    assert "allkeys-lru" in caplog.text  # still said, in the start-up log
    body = json_of(app.test_client().get("/healthz"))
    _close(app)
    assert body["status"] == "ok"
    assert any("allkeys-lru" in w and "ALLOW_EVICTING" in w for w in body["warnings"])


@pytest.mark.parametrize(
    ("server", "fragment"),
    [
        ({"maxmemory_policy": "volatile-lru"}, "volatile-lru"),
        ({"appendonly": False, "save": ""}, "no persistence"),
    ],
    indirect=["server"],
)
def test_volatile_policy_or_no_persistence_starts_with_a_warning(
    server, fragment, settings, runtime, caplog
):
    app = _app(settings, server.url)
    assert fragment in caplog.text
    body = json_of(app.test_client().get("/healthz"))
    _close(app)
    assert body["status"] == "ok"
    assert [w for w in body["warnings"] if fragment in w]


@pytest.mark.parametrize("server", [{"appendonly": False, "save": "3600 1"}], indirect=True)
def test_rdb_snapshots_count_as_persistence(server, settings, runtime):
    app = _app(settings, server.url)
    body = json_of(app.test_client().get("/healthz"))
    _close(app)
    assert not [w for w in body["warnings"] if "Redis" in w]


def test_a_redis_that_refuses_config_get_is_named_in_healthz(server, settings, runtime):
    """Managed services deny CONFIG to the application's user (here through an ACL)."""
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser(
        "farewell",
        enabled=True,
        passwords=["+app-password"],
        keys=["*"],
        commands=["+@all", "-config"],
    )
    admin.close()
    url = server.url.replace("redis://", "redis://farewell:app-password@")
    app = _app(settings, url)
    body = json_of(app.test_client().get("/healthz"))
    _close(app)
    assert body["redis"] == "ok"
    assert [w for w in body["warnings"] if "could not read the Redis configuration" in w]


@pytest.mark.slow
@pytest.mark.parametrize("server", [{"maxmemory_policy": "allkeys-lru"}], indirect=True)
def test_the_worker_refuses_to_start_on_an_allkeys_policy(server, tmp_path):
    env = {
        **os.environ,
        "REDIS_URL": server.url,
        "FAREWELL_SECRET_KEY": SECRET_KEY,
        "FAREWELL_POSTAL_ADDRESS": "Example Club, 1 Main St, Springfield",
        "FAREWELL_WORKER_PROCESSES": "1",
        "FAREWELL_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    env.pop("FAREWELL_ALLOW_EVICTING_REDIS", None)
    done = subprocess.run(
        [sys.executable, "-m", "worker"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "refusing to start" in done.stderr and "allkeys-lru" in done.stderr


def test_a_full_noeviction_redis_refuses_writes_and_the_webhook_is_spooled(
    server, settings, runtime, post_hook
):
    """What `noeviction` buys: when Redis is full the event is kept (in the spool), never
    silently dropped later."""
    admin = redis.Redis.from_url(server.url)
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", used + 64 * 1024)
    with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
        for i in range(1000):
            admin.set(f"filler:{i}", "x" * 4096)
    admin.close()
    app = _app(settings, server.url)
    reply = app.test_client().post(
        "/hooks/memberpress",
        data=json.dumps(payloads.memberpress()),
        headers={"MEMBERPRESS-WEBHOOK-KEY": MEMBERPRESS_KEY},
        content_type="application/json",
    )
    spooled = app.extensions["farewell"].spool.backlog()
    _close(app)
    assert reply.status_code == 202 and json.loads(reply.data)["spooled"] is True
    assert spooled == 1


def test_the_override_is_read_as_a_yes_or_no():
    from worker.settings import SettingsError

    assert Settings.from_env({}).allow_evicting_redis is False
    assert Settings.from_env({"FAREWELL_ALLOW_EVICTING_REDIS": "1"}).allow_evicting_redis is True
    assert Settings.from_env({"FAREWELL_ALLOW_EVICTING_REDIS": "0"}).allow_evicting_redis is False
    with pytest.raises(SettingsError, match="FAREWELL_ALLOW_EVICTING_REDIS must be 1 or 0"):
        Settings.from_env({"FAREWELL_ALLOW_EVICTING_REDIS": "maybe"})
