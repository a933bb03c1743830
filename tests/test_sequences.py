"""Follow-up sequences end to end: real webhooks in, a real Redis, RQ's scheduled registry
driven by an injected clock, emails read back from the outbox or a real SMTP server.

The default playbook, the guardrails no playbook can switch off, and the send-time
conditions. Comebacks, unsubscribes, incentives and erasure have files of their own."""

from __future__ import annotations

import pytest
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler

from tests import payloads
from tests.conftest import json_of, parts
from tests.fixtures_seq import CREATED, JANE, cancel, step_message, subjects
from worker import jobs
from worker.events import member_key

# --- the default playbook -----------------------------------------------------------------


def test_full_default_sequence_over_smtp(
    smtp_runtime, post_hook, clock, smtp_server, client, settings
):
    seq_id = cancel(post_hook)
    clock.advance(seconds=0)
    assert subjects(smtp_server.sink.messages) == ["Thank you, Jane — may we ask one thing?"]
    assert clock.scheduled() == [f"step-{seq_id}-winback"]

    clock.advance(days=13)
    assert len(smtp_server.sink.messages) == 1  # not due yet
    clock.advance(days=1, minutes=1)
    _feedback, winback = smtp_server.sink.messages
    assert winback["Subject"] == "Jane, we hope you are well"
    assert winback["Message-ID"].strip() == f"<{seq_id}.winback@members.example.com>"
    # Both unsubscribe mechanisms: RFC 8058 headers and a visible link in each part.
    url = winback["List-Unsubscribe"].strip("<>")
    assert url.startswith(f"{settings.base_url}/unsubscribe/")
    assert winback["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(winback)
    assert url in text and f'href="{url}"' in html
    assert "Gold Club" in text and "reply to this email" in text
    assert "code is yours" not in text  # no incentive configured in the default playbook
    assert f"{settings.base_url}/feedback/" in text  # no feedback yet: invited, once
    # Nothing more: no job left, and a year later still two emails.
    assert clock.scheduled() == []
    clock.advance(days=365)
    assert len(smtp_server.sink.messages) == 2
    # The one-click POST from the header unsubscribes.
    path = url.removeprefix(settings.base_url)
    reply = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert reply.status_code == 200 and "Location" not in reply.headers
    assert smtp_runtime.store.suppression(JANE).reason == "unsubscribed"


def test_winback_in_portuguese_for_brazilian_members(post_hook, clock, outbox):
    cancel(post_hook, first_name="João", locale="pt_BR")
    clock.advance(days=14, minutes=1)
    winback = step_message(outbox(), "winback")
    assert winback["Subject"] == "João, esperamos que você esteja bem"
    text, _ = parts(winback)
    assert "Cancelar o recebimento: https://members.example.com/unsubscribe/" in text


def test_feedback_already_given_is_not_asked_again(post_hook, clock, outbox, runtime):
    from worker.store import Feedback

    seq_id = cancel(post_hook)
    clock.advance(seconds=0)
    runtime.store.save_feedback(Feedback(seq_id, "temporary", "", no_email=False, at=1.0))
    clock.advance(days=15)
    text, _ = parts(step_message(outbox(), "winback"))
    assert "/feedback/" not in text


# --- guardrails ---------------------------------------------------------------------------


def test_replayed_cancellation_makes_one_sequence(post_hook, clock, outbox, runtime):
    payload = payloads.memberpress()
    seq_id = json_of(post_hook.memberpress(payload))["event_id"]
    assert json_of(post_hook.memberpress(payload))["status"] == "duplicate"
    clock.advance(seconds=0)
    # Past the dedupe window the subscription's state still says cancelled...
    runtime.store.redis.delete(f"farewell:dedupe:{seq_id}")
    assert json_of(post_hook.memberpress(payload))["status"] == "duplicate"
    # ...and an event job run twice (RQ is at-least-once) still makes one sequence.
    assert jobs.handle_event(seq_id).startswith("sequence exists")
    assert runtime.store.member_sequence_ids(member_key(JANE)) == [seq_id]
    assert clock.scheduled() == [f"step-{seq_id}-winback"]
    clock.advance(days=15)
    assert len(outbox()) == 2


def test_second_cancellation_inside_the_cooldown_starts_nothing(post_hook, clock, outbox, runtime):
    first = cancel(post_hook, subscription_id="128")
    clock.advance(seconds=0)
    # She rejoins (a comeback), then cancels the new subscription a month later.
    post_hook.memberpress(payloads.memberpress(CREATED, status="active", subscription_id="200"))
    clock.advance(days=30)
    second = cancel(post_hook, subscription_id="200")
    clock.advance(seconds=0)
    assert runtime.store.member_sequence_ids(member_key(JANE)) == [first]
    assert runtime.store.load_sequence(second) is None
    assert clock.scheduled() == []
    clock.advance(days=60)
    assert len(outbox()) == 1
    ttl = runtime.store.redis.ttl(f"farewell:cooldown:{member_key(JANE)}")
    assert 179 * 86400 < ttl <= 180 * 86400


def test_emails_per_sequence_are_capped_whatever_the_playbook(
    use_playbook, post_hook, clock, outbox
):
    use_playbook(
        """
[default]
steps = [
  { template = "feedback_request", delay = "0", stream = "transactional" },
  { template = "winback", delay = "1d", stream = "marketing" },
]
""",
        max_emails_per_sequence=1,
    )
    seq_id = cancel(post_hook)
    clock.advance(days=2)
    assert len(outbox()) == 1
    assert jobs.send_step(seq_id, "winback") == "skipped: at most 1 emails per sequence"


def test_marketing_template_without_unsubscribe_link_is_refused(
    use_playbook, settings, post_hook, work, outbox, tmp_path
):
    from worker.compose import UnsubscribeMissing

    templates = tmp_path / "tpl"
    (templates / "en").mkdir(parents=True)
    (templates / "reasons.toml").write_text('[other]\nen = "Other"\n')
    (templates / "en" / "promo.html").write_text(
        "{% block subject %}Hi{% endblock %}{% block preheader %}{% endblock %}<p>Buy!</p>"
    )
    (templates / "en" / "promo.txt").write_text("Buy!")
    use_playbook(
        '[default]\nsteps = [{ template = "promo", stream = "marketing" }]\n',
        templates_dir=templates,
    )
    seq_id = cancel(post_hook)
    work()
    assert outbox() == []
    with pytest.raises(UnsubscribeMissing, match="html and text part"):
        jobs.send_step(seq_id, "promo")


# --- send-time conditions -----------------------------------------------------------------

CONDITIONS = """
[default]
steps = [
  { template = "feedback_request", delay = "0", stream = "transactional" },
  { template = "winback", delay = "1d", stream = "marketing", %s },
]
"""


@pytest.mark.parametrize(
    ("condition", "feedback", "sent"),
    [
        ("only_if_no_feedback = true", None, True),
        ("only_if_no_feedback = true", ("not_using", False), False),
        ('only_if_reason = ["too_expensive", "temporary"]', ("temporary", False), True),
        ('only_if_reason = ["too_expensive", "temporary"]', ("not_using", False), False),
        ('only_if_reason = ["too_expensive"]', None, False),
        ("stream = 'marketing'", ("too_expensive", True), False),  # "don't email me"
    ],
)
def test_step_conditions_at_send_time(
    use_playbook, post_hook, clock, outbox, condition, feedback, sent
):
    from worker.store import Feedback

    stream_dup = condition.startswith("stream")
    rt = use_playbook(CONDITIONS % ("incentive = ''" if stream_dup else condition))
    seq_id = cancel(post_hook)
    clock.advance(seconds=0)
    if feedback:
        reason, no_email = feedback
        rt.store.save_feedback(Feedback(seq_id, reason, "", no_email=no_email, at=1.0))
    clock.advance(days=2)
    assert len(outbox()) == (2 if sent else 1)


def test_no_winback_while_paused(post_hook, clock, outbox, runtime):
    seq_id = cancel(post_hook, subscription_id="128")
    clock.advance(seconds=0)
    post_hook.memberpress(
        payloads.memberpress("subscription-paused", status="suspended", subscription_id="300")
    )
    clock.advance(days=15)
    assert len(outbox()) == 1  # the win-back came due while paused: dropped
    assert clock.scheduled() == []
    assert runtime.store.load_sequence(seq_id).status == "active"


def test_a_pause_that_ends_in_cancellation_lets_the_winback_go(post_hook, clock, outbox):
    post_hook.memberpress(
        payloads.memberpress("subscription-paused", status="suspended", subscription_id="128")
    )
    clock.advance(seconds=0)
    cancel(post_hook, subscription_id="128")
    clock.advance(days=15)
    assert len(outbox()) == 2


def test_the_worker_scheduler_enqueues_due_steps(post_hook, work, runtime, outbox, use_playbook):
    """The path production takes: RQ's own scheduler (run by `python -m worker`) moves a
    step whose time has come to the queue. The step's time is moved, not the clock."""
    use_playbook(
        '[default]\nsteps = [{ template = "feedback_request", delay = "1m" }]\n',
    )
    cancel(post_hook)
    work()
    assert outbox() == []  # planned a minute ahead: waiting in RQ's scheduled registry
    queue = runtime.queue
    registry = ScheduledJobRegistry(queue=queue, serializer=queue.serializer)
    [job_id] = registry.get_job_ids()
    queue.connection.zadd(registry.key, {job_id: 1})  # its time has come
    scheduler = RQScheduler([queue], connection=queue.connection, serializer=queue.serializer)
    assert scheduler.acquire_locks()
    scheduler.enqueue_scheduled_jobs()
    scheduler.release_locks()
    work()
    assert len(outbox()) == 1
    assert registry.get_job_ids() == []
