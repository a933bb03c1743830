"""Delivery failures through the real job path (post a webhook, run the worker), the same
for every transport: retries with backoff honouring Retry-After, suppression on permanent
refusals, configuration errors on /healthz and `jobs retry-failed`, and never a duplicate."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from email.utils import parseaddr

import pytest
from rq.job import Job

from tests import payloads
from tests.conftest import json_of
from tests.fixtures_providers import release_scheduled, run_jobs
from worker import jobs
from worker.queues import (
    SEND_TRANSIENT_MAX,
    enqueue_event,
    schedule_step,
    send_retry_delay,
    step_job_id,
)

PROVIDERS = ["postmark", "mailgun", "sendgrid"]
STEP = "feedback_request"


def _job(rt, event_id: str) -> Job:
    queue = rt.queue
    return Job.fetch(
        step_job_id(event_id, STEP), connection=queue.connection, serializer=queue.serializer
    )


def _attempts(job: Job) -> int:
    """Send attempts so far: the one inside the event's job, then the step job's retries."""
    return int(job.meta.get("earlier_attempts", 0)) + (job.number_of_retries or 0)


def _recipient(req) -> str:
    if req.provider == "postmark":
        return parseaddr(req.json["To"])[1]
    if req.provider == "mailgun":
        return parseaddr(req.form_values("to")[0])[1]
    return req.json["personalizations"][0]["to"][0]["email"]


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_providers_message_id_goes_into_the_send_log(
    name, use_provider, post_hook, provider_api
):
    rt = use_provider(name)
    event_id = json_of(post_hook.memberpress())["event_id"]
    run_jobs(rt)
    [req] = provider_api.accepted
    [entry] = rt.store.send_log()
    assert entry["transport"] == name
    assert entry["message_id"] == req.reply_id
    assert entry["sequence"] == event_id and entry["step"] == STEP
    assert rt.store.redis.get(f"farewell:send:{event_id}:{STEP}") == f"sent:{req.reply_id}"


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_429_is_retried_no_sooner_than_retry_after_then_sent_once(
    name, use_provider, post_hook, provider_api
):
    rt = use_provider(name)
    provider_api.retry_after = "120"
    provider_api.fail_next("429")
    event_id = json_of(post_hook.memberpress())["event_id"]
    before = time.time()
    run_jobs(rt)
    job = _job(rt, event_id)
    assert job.get_status() == "scheduled"
    assert _attempts(job) == 1
    due = rt.queue.scheduled_job_registry.get_scheduled_time(job)
    # (RQ keeps whole seconds) not the 15-30 s the first backoff step would give
    assert due.timestamp() >= int(before) + 120
    assert provider_api.accepted == []
    assert rt.store.redis.get(f"farewell:send:{event_id}:{STEP}") is None  # claim released

    assert release_scheduled(rt) == [job.id]
    run_jobs(rt)
    assert len(provider_api.received) == 2
    assert len(provider_api.accepted) == 1
    assert _job(rt, event_id).get_status() == "finished"


def test_backoff_grows_exponentially_with_jitter_and_respects_retry_after():
    assert send_retry_delay(0, rand=lambda: 0.0) == 15
    assert send_retry_delay(0, rand=lambda: 1.0) == 30
    assert send_retry_delay(3, rand=lambda: 0.0) == 120
    assert send_retry_delay(3, rand=lambda: 0.999) <= 240
    assert send_retry_delay(20, rand=lambda: 1.0) == 3600  # capped
    assert send_retry_delay(0, retry_after=300, rand=lambda: 0.5) == 300
    assert send_retry_delay(5, retry_after=2, rand=lambda: 0.0) == 480  # backoff is longer
    delays = {send_retry_delay(2) for _ in range(50)}
    assert len(delays) > 1 and all(60 <= d <= 120 for d in delays)


def test_a_provider_outage_then_recovery_delivers_every_email_exactly_once(
    use_provider, post_hook, provider_api
):
    rt = use_provider("postmark")
    members = [f"m{n}@example.com" for n in range(4)]
    ids = [
        json_of(post_hook.memberpress(payloads.memberpress(email=e, subscription_id=str(n))))[
            "event_id"
        ]
        for n, e in enumerate(members)
    ]
    provider_api.stop()  # connections refused
    run_jobs(rt)
    provider_api.start()
    provider_api.fail_next("500", "500", "500", "429")  # back, but still unwell
    release_scheduled(rt)
    run_jobs(rt)
    assert provider_api.accepted == []
    assert [_attempts(_job(rt, i)) for i in ids] == [2, 2, 2, 2]
    release_scheduled(rt)  # recovered
    run_jobs(rt)

    assert sorted(_recipient(r) for r in provider_api.accepted) == members
    assert len(provider_api.received) == 8  # 4 answered with errors, then 4 accepted
    assert len(rt.store.send_log()) == 4
    # RQ is at-least-once: running every job again sends nothing more.
    for event_id in ids:
        assert jobs.send_step(event_id, STEP).startswith("skipped: already claimed")
    assert release_scheduled(rt) == []
    assert len(provider_api.accepted) == 4


@pytest.mark.parametrize(
    ("name", "mode", "reason"),
    [
        ("postmark", "invalid", "invalid_address"),
        ("postmark", "inactive", "provider_suppressed"),
        ("mailgun", "invalid", "invalid_address"),
        ("sendgrid", "invalid", "invalid_address"),
    ],
)
def test_a_refused_recipient_is_suppressed_and_never_retried(
    name, mode, reason, use_provider, post_hook, provider_api
):
    rt = use_provider(name)
    provider_api.fail_next(mode)
    event_id = json_of(post_hook.memberpress())["event_id"]
    run_jobs(rt)
    # Sent (and refused) inside the event's job: no step job left to retry it.
    assert not Job.exists(step_job_id(event_id, STEP), connection=rt.queue.connection)
    assert release_scheduled(rt) == []
    suppression = rt.store.suppression("jane.doe@example.com")
    assert suppression is not None and suppression.reason == reason
    [entry] = rt.store.send_log()
    assert entry["outcome"] == "rejected"
    # A later cancellation by the same member sends nothing either.
    post_hook.memberpress(payloads.memberpress(subscription_id="999"))
    run_jobs(rt)
    assert len(provider_api.received) == 1


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_bad_api_key_fails_loudly_shows_on_healthz_and_retry_failed_delivers(
    name, use_provider, post_hook, provider_api, client, runner, caplog
):
    wrong = {"postmark_token": "x", "mailgun_api_key": "x", "sendgrid_api_key": "x"}
    rt = use_provider(name, **wrong)
    event_id = json_of(post_hook.memberpress())["event_id"]
    with caplog.at_level(logging.ERROR, logger="worker.jobs"):
        run_jobs(rt)
    assert "MAIL CONFIGURATION ERROR" in caplog.text
    job = _job(rt, event_id)
    assert job.get_status() == "failed"  # not retried: no retry can fix a key
    assert release_scheduled(rt) == []
    assert provider_api.accepted == []
    health = json_of(client.get("/healthz"))
    assert health["status"] == "ok"
    assert health["failed_jobs"] == 1
    error = health["last_send_error"]
    assert error["transport"] == name and "HTTP 401" in error["error"]
    assert (error["sequence"], error["step"]) == (event_id, STEP)
    assert job.id in runner.invoke(args=["jobs", "failed"]).output

    # The owner fixes the key (the worker restarts with it), then retries.
    rt = use_provider(name)
    result = runner.invoke(args=["jobs", "retry-failed"])
    assert result.exit_code == 0 and "requeued 1 job(s)" in result.output
    run_jobs(rt)
    assert len(provider_api.accepted) == 1
    health = json_of(client.get("/healthz"))
    assert health["last_send_error"] is None and health["failed_jobs"] == 0


def test_a_success_clears_the_error_on_healthz(use_provider, post_hook, provider_api, client):
    rt = use_provider("sendgrid", sendgrid_api_key="x")
    post_hook.memberpress()
    run_jobs(rt)
    assert json_of(client.get("/healthz"))["last_send_error"] is not None
    rt = use_provider("sendgrid")
    post_hook.memberpress(payloads.memberpress(email="b@example.com", subscription_id="2"))
    run_jobs(rt)
    assert json_of(client.get("/healthz"))["last_send_error"] is None


def test_retries_run_out_into_the_failed_registry_then_retry_failed_sends(
    use_provider, post_hook, provider_api, runner, caplog
):
    rt = use_provider("mailgun")
    provider_api.fail_next(*["500"] * (SEND_TRANSIENT_MAX + 1))
    event_id = json_of(post_hook.memberpress())["event_id"]
    with caplog.at_level(logging.WARNING, logger="worker.jobs"):
        run_jobs(rt)
        for _ in range(SEND_TRANSIENT_MAX):
            assert release_scheduled(rt) == [step_job_id(event_id, STEP)]
            run_jobs(rt)
    assert "giving up" in caplog.text
    assert _job(rt, event_id).get_status() == "failed"
    assert len(provider_api.received) == SEND_TRANSIENT_MAX + 1
    assert provider_api.accepted == []
    assert "requeued 1 job(s)" in runner.invoke(args=["jobs", "retry-failed"]).output
    run_jobs(rt)
    assert len(provider_api.accepted) == 1


def test_a_lost_reply_is_never_resent_and_is_recorded(
    use_provider, post_hook, provider_api, caplog
):
    rt = use_provider("postmark", mail_read_timeout=0.3)
    provider_api.fail_next("timeout")
    event_id = json_of(post_hook.memberpress())["event_id"]
    with caplog.at_level(logging.ERROR, logger="worker.jobs"):
        run_jobs(rt)
    assert "delivery uncertain" in caplog.text
    assert release_scheduled(rt) == []
    assert jobs.send_step(event_id, STEP).startswith("skipped: already claimed")
    [entry] = rt.store.send_log()
    assert entry["outcome"] == "uncertain"
    assert len(provider_api.received) == 1  # the provider got it once; we never sent again


def test_a_step_already_sent_is_not_sent_by_a_requeued_job(
    use_provider, post_hook, provider_api, runner
):
    rt = use_provider("sendgrid")
    event_id = json_of(post_hook.memberpress())["event_id"]
    run_jobs(rt)
    # RQ runs the event's job twice, or someone queues the step's job by hand.
    enqueue_event(rt.queue, event_id)
    assert schedule_step(rt.queue, event_id, STEP, timedelta(0))
    run_jobs(rt)
    assert len(provider_api.received) == 1
    assert _job(rt, event_id).result.startswith("skipped: already claimed")


def test_an_smtp_configuration_error_takes_the_same_path(
    settings, app, post_hook, client, runner, smtp_server
):
    from dataclasses import replace

    from worker.runtime import Runtime, set_runtime

    broken = Runtime(replace(settings, mail_transport="smtp", smtp_url="smpt://127.0.0.1"))
    set_runtime(broken)
    event_id = json_of(post_hook.memberpress())["event_id"]
    run_jobs(broken)
    assert _job(broken, event_id).get_status() == "failed"
    error = json_of(client.get("/healthz"))["last_send_error"]
    assert error["transport"] == "smtp" and "smtp://" in error["error"]

    fixed = Runtime(replace(settings, mail_transport="smtp", smtp_url=smtp_server.url))
    set_runtime(fixed)
    assert "requeued 1 job(s)" in runner.invoke(args=["jobs", "retry-failed"]).output
    run_jobs(fixed)
    assert len(smtp_server.sink.messages) == 1
    fixed.transport.close()
    set_runtime(None)
