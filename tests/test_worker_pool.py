"""`python -m worker` with several worker processes (worker/pool.py), for real: the
supervisor keeps them running, stops them once and warmly, and never leaves one behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from redis import Redis
from rq import Worker

from tests.conftest import SECRET_KEY
from tests.faultkit import patient, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _start(tmp_path: Path, redis_url: str, **extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAREWELL_", "REDIS_URL"))}
    env.update(
        REDIS_URL=redis_url,
        FAREWELL_SECRET_KEY=SECRET_KEY,
        FAREWELL_POSTAL_ADDRESS="Example Club, 1 Main St, Springfield",
        FAREWELL_OUTBOX_DIR=str(tmp_path / "outbox"),
        FAREWELL_WORKER_PROCESSES="2",
    )
    env.update(extra)
    with (tmp_path / "worker.log").open("ab") as log:  # the processes keep their own copy
        return subprocess.Popen(
            [sys.executable, "-m", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
        )


def _children(proc: subprocess.Popen) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children()


def _registered(redis_url: str) -> int:
    with Redis.from_url(redis_url) as redis:
        return len(Worker.all(connection=redis))


def _gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)


def test_the_supervisor_replaces_a_dead_process_and_stops_all_on_sigterm(tmp_path, own_redis):
    proc = _start(tmp_path, own_redis.url)
    try:
        wait_for(lambda: _registered(own_redis.url) == 2, 30, "two RQ workers")
        first = [p.pid for p in _children(proc)]
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        wait_for(lambda: {p.pid for p in _children(proc)} - set(first), 30, "a replacement process")
        wait_for(lambda: _registered(own_redis.url) >= 2, 30, "the replacement registered")
        pids = [p.pid for p in _children(proc)]
        assert first[1] in pids and len(pids) == 2

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=patient(30)) == 0
        assert _gone(pids)
        log = (tmp_path / "worker.log").read_text()
        assert "exited (status -9); starting another" in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_processes_stop_by_themselves_when_the_supervisor_is_killed(tmp_path, own_redis):
    proc = _start(tmp_path, own_redis.url)
    wait_for(lambda: _registered(own_redis.url) == 2, 30, "two RQ workers")
    pids = [p.pid for p in _children(proc)]
    proc.kill()
    proc.wait()
    wait_for(lambda: _gone(pids), 30, "the orphaned worker processes to stop")
    assert "is gone; stopping" in (tmp_path / "worker.log").read_text()


def test_a_configuration_it_refuses_stops_it_with_status_2_before_any_process_starts(
    tmp_path, own_redis
):
    proc = _start(tmp_path, own_redis.url, FAREWELL_SECRET_KEY="short")
    assert proc.wait(timeout=patient(60)) == 2
    log = (tmp_path / "worker.log").read_text()
    assert "refusing to start" in log and "supervising" not in log


def test_a_worker_started_before_redis_waits_for_it_then_works(tmp_path, own_redis):
    own_redis.kill()  # the port stays ours: nothing listens there yet
    proc = _start(tmp_path, own_redis.url, FAREWELL_WORKER_PROCESSES="1")
    try:
        wait_for(lambda: "waiting for it" in (tmp_path / "worker.log").read_text(), 30, "the wait")
        assert proc.poll() is None
        own_redis.start()
        wait_for(lambda: _registered(own_redis.url) == 1, 30, "the RQ worker")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=patient(30)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
