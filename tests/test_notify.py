"""Notifications to FAREWELL_NOTIFY_URL, posted by RQ jobs to a real local HTTP server."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from rq.job import Job

from tests import payloads
from tests.conftest import json_of
from tests.rq_helpers import release_due
from tests.test_feedback_page import submit
from worker import jobs
from worker.notify import NOTIFY_RETRY, answer_text, cancellation_text

ANSWER_INTERVAL = 3600  # documented: one survey-answer notification per sequence an hour


@pytest.fixture
def settings(settings, notify_server):
    return replace(settings, notify_url=notify_server.url)


def texts(server) -> list[str]:
    return [r["json"]["text"] for r in server.received]


def fetch(runtime, job_id: str) -> Job:
    queue = runtime.queue
    return Job.fetch(job_id, connection=queue.connection, serializer=queue.serializer)


def test_each_cancellation_is_posted_with_the_address_masked(
    post_hook, work, outbox, notify_server
):
    post_hook.memberpress()
    work()
    assert texts(notify_server) == [
        "Cancellation: j***@example.com cancelled Gold Club (via memberpress)."
    ]
    assert notify_server.received[0]["content_type"] == "application/json"
    assert len(outbox()) == 1


def test_a_rerun_event_job_posts_once(post_hook, work, notify_server, runtime):
    event_id = json_of(post_hook.memberpress())["event_id"]
    work()
    jobs.handle_event(event_id)
    work()
    assert len(notify_server.received) == 1


def test_survey_answers_are_posted_and_updates_say_so(
    client, post_hook, work, survey_links, notify_server, runtime
):
    post_hook.memberpress()
    work()
    links = survey_links()
    submit(client, links["too_expensive"], reason="too_expensive", comment="Pricey <b>& far</b>")
    work()
    submit(client, links["other"], reason="other", no_email="1")
    work()
    assert len(notify_server.received) == 2  # the update waits for the hour's follow-up
    release_due(runtime.queue, time.time() + ANSWER_INTERVAL)
    work()
    assert texts(notify_server)[1:] == [
        "Survey answer from j***@example.com (Gold Club): It costs more than it's worth to me "
        "“Pricey &lt;b&gt;&amp; far&lt;/b&gt;”",
        "Survey answer updated from j***@example.com (Gold Club): Something else "
        "(asked not to be emailed again)",
    ]
    assert all("jane.doe" not in t for t in texts(notify_server))


def test_a_resubmitted_survey_makes_one_notification_an_hour_with_the_latest_answer(
    client, post_hook, work, survey_links, notify_server, runtime
):
    post_hook.memberpress()
    work()
    links = survey_links()
    for n in range(15):
        submit(client, links["too_expensive"], reason="too_expensive", comment=f"take {n}")
        work()
    answers = texts(notify_server)[1:]
    assert len(answers) == 1 and "take 0" in answers[0]
    # Nothing more within the hour; at its end one follow-up with the answer as it stands.
    assert release_due(runtime.queue, time.time() + ANSWER_INTERVAL - 60) == []
    assert len(release_due(runtime.queue, time.time() + ANSWER_INTERVAL + 1)) == 1
    work()
    answers = texts(notify_server)[1:]
    assert len(answers) == 2
    assert answers[1].startswith("Survey answer updated") and "take 14" in answers[1]
    # The follow-up opened the next hour: an answer right after it waits again.
    submit(client, links["other"], reason="other")
    work()
    assert len(texts(notify_server)) == 3


def test_answers_of_two_sequences_are_not_collapsed_together(
    client, post_hook, work, survey_links, notify_server
):
    post_hook.memberpress()
    post_hook.memberpress(payloads.memberpress(email="bob@example.com", subscription_id="2"))
    work()
    for email in ("jane.doe@example.com", "bob@example.com"):
        links = survey_links(email)
        submit(client, links["other"], reason="other")
    work()
    assert len([t for t in texts(notify_server) if t.startswith("Survey answer from")]) == 2


def test_a_failing_endpoint_is_retried_and_never_blocks_the_email(
    post_hook, work, outbox, notify_server, runtime
):
    notify_server.statuses = [500]
    event_id = json_of(post_hook.memberpress())["event_id"]
    work()
    assert len(outbox()) == 1  # the email went out regardless
    assert notify_server.received == []
    job = fetch(runtime, f"notify-cancel-{event_id}")
    assert job.get_status() == "scheduled"  # waiting for RQ's retry
    assert job.retries_left == NOTIFY_RETRY.max - 1
    # The retry comes due: RQ's scheduler moves it back onto the queue.
    assert job.id in release_due(runtime.queue, time.time() + 3600)
    work()
    assert texts(notify_server) == [
        "Cancellation: j***@example.com cancelled Gold Club (via memberpress)."
    ]
    assert fetch(runtime, f"notify-cancel-{event_id}").get_status() == "finished"


def test_an_unreachable_endpoint_is_retried_too(settings, post_hook, work, outbox, runtime):
    from devstack.redis_server import free_port

    runtime.settings = replace(settings, notify_url=f"http://127.0.0.1:{free_port()}/hook")
    event_id = json_of(post_hook.memberpress())["event_id"]
    work()
    assert len(outbox()) == 1
    assert fetch(runtime, f"notify-cancel-{event_id}").get_status() == "scheduled"


def test_nothing_is_queued_without_a_url(settings, post_hook, work, runtime, notify_server):
    runtime.settings = replace(settings, notify_url="")
    event_id = json_of(post_hook.memberpress())["event_id"]
    work()
    queue = runtime.queue
    assert Job.fetch_many([f"notify-cancel-{event_id}"], connection=queue.connection) == [None]
    assert notify_server.received == []


def test_message_texts():
    assert cancellation_text("", "", "stripe") == "Cancellation: A member cancelled (via stripe)."
    long = answer_text("a.b@example.org", "", "Other", "x" * 1000, False, False)
    assert long.startswith("Survey answer from a***@example.org: Other “")
    assert long.endswith("…”") and len(long) < 400
    assert answer_text("a@x.org", "Gold", "", "", True, True) == (
        "Survey answer updated from a***@x.org (Gold): no reason picked "
        "(asked not to be emailed again)"
    )


def test_a_notify_url_that_is_not_http_is_refused_at_start():
    from worker.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="FAREWELL_NOTIFY_URL must be an http"):
        Settings.from_env({"FAREWELL_NOTIFY_URL": "hooks.slack.com/services/x"})
    assert Settings.from_env({"FAREWELL_NOTIFY_URL": "https://hooks.slack.com/x"}).notify_url
