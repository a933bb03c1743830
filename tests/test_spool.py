"""Nothing lost when Redis is down: the receiver spools, answers 202, and the spool is
replayed exactly once when Redis is back."""

from __future__ import annotations

import os
import threading
from dataclasses import replace

import pytest

from hooks import create_app
from hooks.spool import Spool
from tests import payloads
from tests.conftest import json_of
from tests.rq_helpers import run_queued
from worker.events import Event
from worker.runtime import Runtime, set_runtime


@pytest.fixture
def down_settings(settings, own_redis):
    return replace(settings, redis_url=own_redis.url)


@pytest.fixture
def down_app(down_settings):
    rt = Runtime(down_settings)
    set_runtime(rt)
    app = create_app({"TESTING": True, "SETTINGS": down_settings})
    yield app, rt
    set_runtime(None)


def _post(app, payload):
    return app.test_client().post(
        "/hooks/memberpress",
        data=payloads.body(payload),
        headers={"MEMBERPRESS-WEBHOOK-KEY": "mp-test-key-4f1c9a"},
    )


def test_redis_down_still_answers_202_and_the_email_goes_out_once_after(
    down_app, own_redis, outbox
):
    app, rt = down_app
    own_redis.stop()
    response = _post(app, payloads.memberpress())
    assert response.status_code == 202
    assert json_of(response)["status"] == "queued"
    assert json_of(response)["spooled"] is True
    assert app.extensions["farewell"].spool.backlog() == 1
    assert app.test_client().get("/healthz").status_code == 503

    own_redis.start()
    result = app.extensions["farewell"].replay_spool()
    assert (result.replayed, result.duplicates) == (1, 0)
    assert app.extensions["farewell"].spool.backlog() == 0
    run_queued(rt.queue)
    assert len(outbox()) == 1

    # A second replay and a late re-delivery change nothing.
    assert app.extensions["farewell"].replay_spool().replayed == 0
    assert _post(app, payloads.memberpress()).status_code == 200
    run_queued(rt.queue)
    assert len(outbox()) == 1


def test_the_same_event_spooled_twice_is_processed_once(down_app, own_redis, outbox):
    app, rt = down_app
    own_redis.stop()
    assert _post(app, payloads.memberpress()).status_code == 202
    assert _post(app, payloads.memberpress()).status_code == 202
    own_redis.start()
    result = app.extensions["farewell"].replay_spool()
    assert (result.replayed, result.duplicates) == (1, 1)
    run_queued(rt.queue)
    assert len(outbox()) == 1


def test_replay_that_fails_midway_keeps_the_rest_for_later(down_app, own_redis, outbox):
    app, rt = down_app
    own_redis.stop()
    for n in range(3):
        _post(app, payloads.memberpress(email=f"m{n}@example.com", subscription_id=str(n)))
    spool = app.extensions["farewell"].spool
    calls = []

    def flaky_submit(event: Event) -> bool:
        calls.append(event)
        if len(calls) == 2:
            raise ConnectionError("redis went away again")
        return True

    with pytest.raises(ConnectionError):
        spool.replay(flaky_submit)
    assert spool.backlog() == 3  # the claimed file stays until fully submitted

    own_redis.start()
    # The claimed file is an orphan only after a while; pretend that while has passed.
    for path in spool.files():
        os.utime(path, (0, 0))
    result = app.extensions["farewell"].replay_spool()
    assert result.replayed == 3
    run_queued(rt.queue)
    assert len(outbox()) == 3


def test_the_replay_command_reports_what_it_did(down_app, own_redis):
    app, _rt = down_app
    own_redis.stop()
    _post(app, payloads.memberpress())
    own_redis.start()
    runner = app.test_cli_runner()
    assert "1 event(s) waiting" in runner.invoke(args=["spool", "status"]).output
    result = runner.invoke(args=["spool", "replay"])
    assert result.exit_code == 0
    assert "replayed 1, duplicates 0" in result.output


def test_concurrent_appends_and_replays_lose_nothing_and_repeat_nothing(tmp_path):
    from tests.test_memberpress_source import parse

    spool = Spool(tmp_path / "spool")
    events = [
        parse(payloads.memberpress(email=f"m{n}@example.com", subscription_id=str(n)))
        for n in range(400)
    ]
    seen: list[str] = []
    lock = threading.Lock()

    def submit(event: Event) -> bool:
        with lock:
            seen.append(event.event_id)
        return True

    def writer(chunk):
        for event in chunk:
            spool.append(event)

    def replayer(stop: threading.Event):
        while not stop.is_set():
            spool.replay(submit)

    stop = threading.Event()
    replayers = [threading.Thread(target=replayer, args=(stop,)) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(events[i::4],)) for i in range(4)]
    for t in replayers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in replayers:
        t.join()
    spool.replay(submit)
    assert sorted(seen) == sorted(e.event_id for e in events)
    assert spool.backlog() == 0
