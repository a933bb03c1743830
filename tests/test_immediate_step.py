"""A step due now is sent inside handle_event (one job per cancellation instead of two);
a failed inline send falls back to a send_step job with its retries; later steps are
scheduled as before."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rq.exceptions import NoSuchJobError
from rq.job import Job

from tests import payloads
from tests.conftest import json_of
from worker import jobs
from worker.queues import event_job_id, step_job_id
from worker.runtime import Runtime, set_runtime


def _step_job(rt: Runtime, event_id: str) -> Job:
    return Job.fetch(
        step_job_id(event_id, "feedback_request"),
        connection=rt.queue.connection,
        serializer=rt.queue.serializer,
    )


def test_the_feedback_request_is_sent_by_the_event_job_itself(post_hook, runtime, outbox):
    event_id = json_of(post_hook.memberpress())["event_id"]
    assert runtime.queue.job_ids == [event_job_id(event_id)]
    jobs.handle_event(event_id)  # as the worker would run it
    assert len(outbox()) == 1
    assert runtime.queue.job_ids == [event_job_id(event_id)]  # no step job added
    assert runtime.queue.scheduled_job_registry.get_job_ids() == []
    with pytest.raises(NoSuchJobError):
        _step_job(runtime, event_id)
    claim = runtime.store.redis.get(f"farewell:send:{event_id}:feedback_request")
    assert claim.startswith("sent:")


def test_rerunning_the_event_job_sends_nothing_more_and_queues_nothing(post_hook, runtime, outbox):
    event_id = json_of(post_hook.memberpress())["event_id"]
    jobs.handle_event(event_id)
    assert jobs.handle_event(event_id).startswith("sequence exists, 0 step(s) planned")
    assert len(outbox()) == 1
    assert runtime.queue.job_ids == [event_job_id(event_id)]


@pytest.fixture
def smtp_runtime(smtp_settings, app):
    rt = Runtime(smtp_settings)
    set_runtime(rt)
    yield rt
    rt.transport.close()
    set_runtime(None)


def test_a_failed_inline_send_becomes_a_step_job_that_retries(smtp_runtime, post_hook, smtp_server):
    smtp_server.sink.rcpt_reply = "451 4.3.0 Try again later"
    event_id = json_of(post_hook.memberpress())["event_id"]
    outcome = jobs.handle_event(event_id)
    assert outcome.startswith("sequence started, 1 step(s) planned")
    assert smtp_server.sink.messages == []
    job = _step_job(smtp_runtime, event_id)
    assert job.get_status() == "queued"
    assert job.retries_left == 8  # the step job's own retry policy, untouched
    # The claim was released, so the job can send once the server accepts again.
    smtp_server.sink.rcpt_reply = None
    assert jobs.send_step(event_id, "feedback_request") == "sent"
    assert len(smtp_server.sink.messages) == 1


def test_a_step_due_later_is_scheduled_not_sent(settings, runtime, post_hook, outbox, tmp_path):
    playbook = tmp_path / "playbook.toml"
    playbook.write_text('[default]\nsteps = [{ template = "feedback_request", delay = "14d" }]\n')
    rt = Runtime(replace(settings, playbook_path=playbook))
    set_runtime(rt)
    try:
        event_id = json_of(post_hook.memberpress(payloads.memberpress()))["event_id"]
        jobs.handle_event(event_id)
        assert outbox() == []
        assert rt.queue.scheduled_job_registry.get_job_ids() == [
            step_job_id(event_id, "feedback_request")
        ]
    finally:
        set_runtime(runtime)
