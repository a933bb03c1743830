"""Intake: dedupe, record and the handle_event job written in one Redis round trip, and the
pending sweeper that repairs a job lost afterwards."""

from __future__ import annotations

import redis
from rq.job import Job
from rq.results import Result

from hooks.sources import memberpress
from tests import payloads
from worker.intake import Outcome, requeue_stale, submit
from worker.queues import EVENT_RETRY, event_job_id, make_queue, rq_connection
from worker.store import Store


class CountingConnection(redis.Connection):
    """Counts what is written to Redis: one call per command or per pipeline."""

    sent = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def _event(n: int = 1):
    return memberpress.parse(
        payloads.body(
            payloads.memberpress(email=f"member{n}@example.com", subscription_id=str(100 + n))
        )
    )


def _counting_store(redis_url: str) -> Store:
    pool = redis.ConnectionPool.from_url(
        redis_url, connection_class=CountingConnection, decode_responses=True
    )
    return Store(redis.Redis(connection_pool=pool))


def test_an_accepted_event_costs_one_round_trip_to_redis(redis_url):
    store = _counting_store(redis_url)
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    queue = make_queue(redis.Redis(connection_pool=pool), "farewell")
    assert submit(store, queue, _event(1), 60) is Outcome.QUEUED  # loads the script
    CountingConnection.sent = 0
    assert submit(store, queue, _event(2), 60) is Outcome.QUEUED
    assert CountingConnection.sent == 1
    CountingConnection.sent = 0
    assert submit(store, queue, _event(2), 60) is Outcome.DUPLICATE
    assert CountingConnection.sent == 1


def test_the_job_is_written_as_rq_would_enqueue_it(redis_url):
    """Same hash fields and values as RQ's own enqueue (bar times and arguments), so an
    RQ upgrade that changes the job format fails here rather than in production."""
    from worker.queues import enqueue_event

    store = Store(redis.Redis.from_url(redis_url, decode_responses=True))
    queue = make_queue(rq_connection(redis_url), "farewell")
    event = _event()
    submit(store, queue, event, 60)
    enqueue_event(queue, "reference")
    ours = queue.connection.hgetall(Job.key_for(event_job_id(event.event_id)))
    theirs = queue.connection.hgetall(Job.key_for(event_job_id("reference")))
    varying = {b"created_at", b"enqueued_at", b"data", b"description"}
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in varying} == {
        k: v for k, v in theirs.items() if k not in varying
    }
    job = Job.fetch(
        event_job_id(event.event_id), connection=queue.connection, serializer=queue.serializer
    )
    assert job.func_name == "worker.jobs.handle_event"
    assert job.args == [event.event_id]
    assert job.retries_left == EVENT_RETRY.max
    assert job.get_status() == "queued"
    assert queue.job_ids == [event_job_id(event.event_id), event_job_id("reference")]
    assert queue.connection.sismember(queue.redis_queues_keys, queue.key)


def test_a_duplicate_writes_nothing(redis_url):
    store = Store(redis.Redis.from_url(redis_url, decode_responses=True))
    queue = make_queue(rq_connection(redis_url), "farewell")
    event = _event()
    assert submit(store, queue, event, 60) is Outcome.QUEUED
    keys_before = sorted(queue.connection.keys("*"))
    assert submit(store, queue, event, 60) is Outcome.DUPLICATE
    assert sorted(queue.connection.keys("*")) == keys_before
    assert len(queue) == 1


def test_an_accepted_event_is_handled_by_the_worker(post_hook, work, runtime):
    event = _event()
    assert submit(runtime.store, runtime.queue, event, 60) is Outcome.QUEUED
    work()
    assert runtime.store.stale_pending(older_than=-1) == []
    assert runtime.store.load_member(event.member.key).email == "member1@example.com"


def test_the_sweeper_requeues_an_accepted_event_whose_job_was_lost(runtime):
    event = _event()
    submit(runtime.store, runtime.queue, event, 60)
    job_id = event_job_id(event.event_id)
    Job.fetch(job_id, connection=runtime.queue.connection).delete()
    assert runtime.queue.job_ids == []
    assert requeue_stale(runtime.store, runtime.queue, older_than=-1) == 1
    assert runtime.queue.job_ids == [job_id]
    # A job that exists is left alone.
    assert requeue_stale(runtime.store, runtime.queue, older_than=-1) == 0


def test_the_sweeper_looks_at_the_oldest_pending_events_only(runtime):
    events = [_event(n) for n in range(1, 4)]
    for n, event in enumerate(events):
        submit(runtime.store, runtime.queue, event, 60)
        runtime.store.redis.zadd("farewell:pending", {event.event_id: 1000 + n})
    for event in events:
        Job.fetch(event_job_id(event.event_id), connection=runtime.queue.connection).delete()
    assert requeue_stale(runtime.store, runtime.queue, older_than=-1, limit=2) == 2
    assert runtime.queue.job_ids == [event_job_id(e.event_id) for e in events[:2]]
    assert requeue_stale(runtime.store, runtime.queue, older_than=-1, limit=2) == 0
    assert requeue_stale(runtime.store, runtime.queue, older_than=-1, limit=3) == 1


def test_event_to_dict_matches_asdict_and_round_trips():
    from dataclasses import asdict

    from worker.events import Event

    event = _event()
    expected = asdict(event)
    expected.update(
        kind=event.kind.value,
        occurred_at=event.occurred_at.isoformat(),
        access_ends_at=None,
        event_id=event.event_id,
    )
    assert event.to_dict() == expected
    assert Event.from_dict(event.to_dict()) == event


def test_webhooks_get_no_session_but_pages_do(app):
    from flask import session

    with app.test_request_context("/hooks/memberpress", method="POST"):
        app.preprocess_request()
        assert app.session_interface.is_null_session(session)
    with app.test_request_context("/feedback/some-token"):
        assert not app.session_interface.is_null_session(session)
        session["csrf_token"] = "x"  # pages may still write it


def test_a_webhook_reply_sets_no_cookie(post_hook):
    response = post_hook.memberpress()
    assert response.status_code == 202
    assert "Set-Cookie" not in response.headers


def test_a_handled_event_leaves_no_job_or_result_behind(post_hook, work, runtime):
    event_id = post_hook.memberpress().get_json()["event_id"]
    work()
    connection = runtime.queue.connection
    assert not connection.exists(Job.key_for(event_job_id(event_id)))
    assert not connection.exists(Result.get_key(event_job_id(event_id)))
    assert runtime.store.stale_pending(older_than=-1) == []
    assert requeue_stale(runtime.store, runtime.queue, older_than=-1) == 0


def test_the_worker_lowers_its_cpu_priority_by_the_setting():
    import os
    import subprocess
    import sys

    code = (
        "import os; from worker.process import lower_priority; from worker.settings import "
        "Settings; before = os.nice(0); lower_priority(Settings.from_env().worker_nice); "
        "print(os.nice(0) - before)"
    )
    env = {**os.environ, "FAREWELL_WORKER_NICE": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "3", out.stderr
    env["FAREWELL_WORKER_NICE"] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "0", out.stderr


def test_a_scheduled_step_is_written_as_rq_would_schedule_it(redis_url):
    """The win-back step every cancellation plans skips RQ's Job object too: same hash,
    same scheduled-registry entry as RQ's enqueue_in."""
    from datetime import timedelta

    from worker.queues import SEND_RETRY, SEND_STEP, STEP_RESULT_TTL, schedule_step

    queue = make_queue(rq_connection(redis_url), "farewell")
    delay = timedelta(days=14)
    assert schedule_step(queue, "seq-1", "win_back", delay)
    queue.enqueue_in(
        delay,
        SEND_STEP,
        "seq-2",
        "win_back",
        job_id="reference",
        retry=SEND_RETRY,
        result_ttl=STEP_RESULT_TTL,
        failure_ttl=30 * 24 * 3600,
    )
    ours = queue.connection.hgetall(Job.key_for("step-seq-1-win_back"))
    theirs = queue.connection.hgetall(Job.key_for("reference"))
    varying = {b"created_at", b"data", b"description"}
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in varying} == {
        k: v for k, v in theirs.items() if k not in varying
    }
    registry = queue.scheduled_job_registry
    assert sorted(registry.get_job_ids()) == ["reference", "step-seq-1-win_back"]
    due = [registry.get_scheduled_time(j) for j in ("step-seq-1-win_back", "reference")]
    assert abs((due[0] - due[1]).total_seconds()) <= 1
    job = Job.fetch("step-seq-1-win_back", connection=queue.connection, serializer=queue.serializer)
    assert (job.func_name, job.args, job.get_status()) == (
        SEND_STEP,
        ["seq-1", "win_back"],
        "scheduled",
    )
    assert queue.connection.ttl(Job.key_for("step-seq-1-win_back")) == -1
