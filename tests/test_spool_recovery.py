"""A spool file claimed by a replayer that is gone is replayed at once, not after the
orphan delay: after a crash or a Redis outage, spooled events move as soon as they can."""

from __future__ import annotations

import os
import subprocess

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from hooks.spool import Spool
from tests import payloads
from tests.test_memberpress_source import parse


def _spool_with(tmp_path, n: int) -> Spool:
    spool = Spool(tmp_path / "spool")
    for i in range(n):
        spool.append(parse(payloads.memberpress(email=f"m{i}@example.com", subscription_id=str(i))))
    return spool


def test_a_file_claimed_by_a_dead_process_is_taken_over_at_once(tmp_path):
    spool = _spool_with(tmp_path, 3)
    dead = subprocess.Popen(["true"])
    dead.wait()
    spool.active.rename(spool.directory / f"claimed-{dead.pid}-1.jsonl")
    seen = []
    assert spool.replay(lambda e: seen.append(e.event_id) or True).replayed == 3
    assert len(seen) == 3 and spool.backlog() == 0


def test_a_file_claimed_by_a_live_process_is_left_to_it(tmp_path):
    spool = _spool_with(tmp_path, 2)
    spool.active.rename(spool.directory / f"claimed-{os.getppid()}-1.jsonl")
    assert spool.replay(lambda e: True).replayed == 0
    assert spool.backlog() == 2


def test_a_replay_cut_short_by_redis_is_resumed_by_the_same_process_next_time(tmp_path):
    spool = _spool_with(tmp_path, 3)

    def down(event):
        raise RedisConnectionError("down")

    with pytest.raises(RedisConnectionError):
        spool.replay(down)
    assert spool.backlog() == 3  # still claimed, by us
    assert spool.replay(lambda e: True).replayed == 3
    assert spool.backlog() == 0


def test_a_file_taken_over_mid_replay_ends_this_replay_quietly(tmp_path):
    # Another replayer (say, in another container sharing the folder) judged us gone and
    # renamed our claimed file while we were submitting: it replays every line, dedupe
    # counts each event once, and our replay must not crash the replayer thread.
    spool = _spool_with(tmp_path, 3)
    seen = []

    def taken_over_after_first(event):
        if not seen:
            [claimed] = [p for p in spool.files() if p.name.startswith("claimed-")]
            claimed.rename(spool.directory / "claimed-999999-1.jsonl")
        seen.append(event.event_id)
        return True

    result = spool.replay(taken_over_after_first)
    assert result.replayed == 1
    assert spool.backlog() == 3  # the other replayer's file still holds all three
    assert spool.replay(lambda e: True).replayed == 3  # pid 999999 is gone: taken back
    assert spool.backlog() == 0
