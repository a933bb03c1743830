"""Event jobs handled in batches: an event's job takes the event jobs queued right behind
it (worker/batch.py), and nothing is lost when it fails, runs out of time, or dies."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from tests import payloads
from tests.conftest import json_of
from tests.rq_helpers import BurstWorker
from worker import batch, jobs, liveness, rq_seam
from worker.queues import event_job_id, schedule_step
from worker.runtime import Runtime, set_runtime
from worker.store import BATCH_OWNERS_KEY, alive_key, batch_key, event_key

OWNER = "farewell-batch-test"


@pytest.fixture
def owner(runtime):
    """This process as a worker with a heartbeat (only those batch)."""
    runtime.store.redis.set(alive_key(OWNER), "1", ex=60)
    liveness.set_owner(OWNER)
    yield OWNER
    liveness.set_owner(None)


def _cancel(post_hook, n: int) -> list[str]:
    return [
        json_of(
            post_hook.memberpress(
                payloads.memberpress(email=f"m{i}@example.com", subscription_id=str(i))
            )
        )["event_id"]
        for i in range(n)
    ]


def _queued(runtime) -> list[str]:
    return [raw.decode() for raw in runtime.queue.connection.lrange(runtime.queue.key, 0, -1)]


def _one_rq_job(runtime) -> None:
    queue = runtime.queue
    BurstWorker([queue], connection=queue.connection, serializer=queue.serializer).work(
        burst=True, with_scheduler=False, max_jobs=1
    )


def test_one_rq_job_handles_the_events_queued_behind_it_and_sends_their_emails(
    runtime, post_hook, owner, outbox
):
    ids = _cancel(post_hook, 5)
    _one_rq_job(runtime)
    assert sorted(m["To"].addresses[0].addr_spec for m in outbox()) == [
        f"m{i}@example.com" for i in range(5)
    ]
    assert _queued(runtime) == []
    assert runtime.store.redis.zcard("farewell:pending") == 0
    connection = runtime.queue.connection
    assert not any(rq_seam.jobs_exist(connection, [event_job_id(i) for i in ids]))
    assert not connection.exists(batch_key(owner))


def test_without_a_heartbeat_each_event_is_its_own_job(runtime, post_hook, outbox):
    ids = _cancel(post_hook, 3)
    _one_rq_job(runtime)  # no owner: tests, operator commands
    assert len(outbox()) == 1
    assert _queued(runtime) == [event_job_id(i) for i in ids[1:]]


def test_a_batch_of_one_turns_batching_off(settings, post_hook, owner, outbox):
    rt = Runtime(replace(settings, event_batch=1))
    set_runtime(rt)
    try:
        ids = _cancel(post_hook, 3)
        _one_rq_job(rt)
        assert len(outbox()) == 1
        assert _queued(rt) == [event_job_id(i) for i in ids[1:]]
    finally:
        rt.close()


def test_taking_stops_at_the_first_job_that_is_not_an_events(runtime, post_hook, owner):
    ids = _cancel(post_hook, 2)
    schedule_step(runtime.queue, "seq-x", "feedback_request", timedelta(0))
    [third] = _cancel(post_hook, 3)[2:]
    assert batch.take(runtime.queue, owner, 10) == [event_job_id(i) for i in ids]
    assert _queued(runtime) == ["step-seq-x-feedback_request", event_job_id(third)]


def test_an_event_that_fails_in_a_batch_goes_back_first_and_runs_as_its_own_job(
    runtime, post_hook, owner, outbox
):
    ids = _cancel(post_hook, 4)
    runtime.store.redis.set(event_key(ids[1]), "{not json")
    _one_rq_job(runtime)
    assert len(outbox()) == 1  # the first event; the batch ended at the broken one
    assert _queued(runtime) == [event_job_id(i) for i in ids[1:]]
    assert not runtime.queue.connection.exists(batch_key(owner))

    _one_rq_job(runtime)  # the broken one, on its own: RQ's retry policy takes over
    job = runtime.queue.fetch_job(event_job_id(ids[1]))
    assert job.get_status() == "scheduled" and job.retries_left == 4
    assert len(outbox()) == 1
    assert _queued(runtime) == [event_job_id(i) for i in ids[2:]]


def test_events_not_reached_in_time_go_back_in_their_order(
    runtime, post_hook, owner, outbox, monkeypatch
):
    monkeypatch.setattr(jobs, "BATCH_SECONDS", -1.0)
    ids = _cancel(post_hook, 4)
    _one_rq_job(runtime)
    assert len(outbox()) == 1
    assert _queued(runtime) == [event_job_id(i) for i in ids[1:]]


def test_a_worker_asked_to_stop_puts_the_rest_of_its_batch_back(
    runtime, post_hook, owner, outbox, monkeypatch
):
    stopping = threading.Event()
    stopping.set()  # SIGTERM arrived while the first event's job ran
    monkeypatch.setattr(liveness, "stopping", stopping)
    ids = _cancel(post_hook, 4)
    _one_rq_job(runtime)
    assert len(outbox()) == 1
    assert _queued(runtime) == [event_job_id(i) for i in ids[1:]]


def test_the_batch_of_a_dead_worker_goes_back_to_the_queue(runtime, post_hook, owner):
    ids = _cancel(post_hook, 3)
    redis = runtime.store.redis
    taken = batch.take(runtime.queue, "farewell-dead", 2)
    assert taken == [event_job_id(i) for i in ids[:2]]
    assert batch.take(runtime.queue, owner, 1) == [event_job_id(ids[2])]
    assert _queued(runtime) == []

    assert batch.recover_dead(runtime.queue) == 2  # the live owner's batch stays
    assert _queued(runtime) == taken
    assert redis.lrange(batch_key(owner), 0, -1) == [event_job_id(ids[2])]
    assert redis.smembers(BATCH_OWNERS_KEY) == {owner}
    assert batch.recover_dead(runtime.queue) == 0


def test_a_batch_whose_settle_never_reached_redis_is_queued_again_by_the_next_take(
    runtime, post_hook, owner
):
    ids = _cancel(post_hook, 4)
    assert batch.take(runtime.queue, owner, 2) == [event_job_id(i) for i in ids[:2]]
    # (the settle is lost: a Redis blip) ... the owner's next batch starts with them again
    assert batch.take(runtime.queue, owner, 3) == [event_job_id(i) for i in ids[:3]]
    assert _queued(runtime) == [event_job_id(ids[3])]
