"""A comeback (resumed, reactivated, `member resume`) stops the member's follow-ups at
once, whatever the order the events arrive in."""

from __future__ import annotations

import pytest

from tests import payloads
from tests.conftest import json_of
from tests.fixtures_seq import CREATED, JANE, RESUMED, cancel, subjects
from worker import jobs
from worker.events import member_key
from worker.sequences import record_comeback

# --- comeback -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "membership_id"),
    [(RESUMED, "3006"), (CREATED, "9999")],  # resumed, or a new membership of another kind
)
def test_comeback_before_the_winback_cancels_it(
    post_hook, clock, outbox, runtime, event, membership_id
):
    seq_id = cancel(post_hook)
    clock.advance(seconds=0)
    assert clock.scheduled() == [f"step-{seq_id}-winback"]
    reply = post_hook.memberpress(
        payloads.memberpress(
            event, status="active", subscription_id="777", membership_id=membership_id
        )
    )
    assert reply.status_code == 202
    clock.advance(seconds=0)
    assert clock.scheduled() == []  # the registry no longer holds the step
    seq = runtime.store.load_sequence(seq_id)
    assert (seq.status, seq.outcome) == ("stopped", "came_back")
    assert seq.came_back_at is not None
    clock.advance(days=30)
    assert subjects(outbox()) == ["Thank you, Jane — may we ask one thing?"]


def test_comeback_keys_on_the_address_not_the_plugin_member_id(post_hook, clock, runtime):
    seq_id = cancel(post_hook)
    clock.advance(seconds=0)
    post_hook.memberpress(
        payloads.memberpress(
            CREATED,
            email="Jane.Doe@Example.com",
            member_id=999,
            subscription_id="5",
            status="active",
        )
    )
    clock.advance(seconds=0)
    assert runtime.store.load_sequence(seq_id).outcome == "came_back"


def test_comeback_after_the_winback_is_won_back(post_hook, clock, outbox, runtime):
    seq_id = cancel(post_hook)
    clock.advance(days=14, minutes=1)
    assert len(outbox()) == 2
    post_hook.memberpress(payloads.memberpress(CREATED, status="active", subscription_id="900"))
    clock.advance(seconds=0)
    seq = runtime.store.load_sequence(seq_id)
    assert (seq.status, seq.outcome) == ("stopped", "won_back")
    assert seq.came_back_at >= seq.marketing_sent_at


def test_comeback_long_after_the_winback_is_a_plain_comeback(post_hook, clock, runtime):
    seq_id = cancel(post_hook)
    clock.advance(days=14, minutes=1)
    sent_at = runtime.store.load_sequence(seq_id).marketing_sent_at
    later = sent_at + 31 * 24 * 3600  # past the 30-day window
    [stopped] = record_comeback(runtime.store, runtime.queue, member_key(JANE), later, 30)
    assert stopped.outcome == "came_back"


def test_reactivation_of_a_member_who_never_cancelled_is_just_recorded(post_hook, work, runtime):
    event_id = json_of(post_hook.memberpress(payloads.memberpress(CREATED, status="active")))[
        "event_id"
    ]
    work()
    assert jobs.handle_event(event_id) == "recorded reactivated (no active sequence)"
    assert runtime.store.member_sequence_ids(member_key(JANE)) == []


def test_member_resume_command_stops_everything(post_hook, clock, runner, runtime, outbox):
    seq_id = cancel(post_hook)
    clock.advance(seconds=0)
    result = runner.invoke(args=["member", "resume", JANE])
    assert result.exit_code == 0, result.output
    assert f"sequence {seq_id} stopped, came_back, 1 pending step(s) cancelled" in result.output
    assert JANE not in result.output  # masked
    assert clock.scheduled() == []
    clock.advance(days=20)
    assert len(outbox()) == 1
    again = runner.invoke(args=["member", "resume", JANE])
    assert "no active follow-up sequence" in again.output


def test_worker_run_twice_for_a_step_after_comeback_sends_nothing(post_hook, clock, runtime):
    seq_id = cancel(post_hook)
    clock.advance(seconds=0)
    post_hook.memberpress(payloads.memberpress(RESUMED, status="active"))
    clock.advance(seconds=0)
    assert jobs.send_step(seq_id, "winback") == "skipped: sequence stopped"


def test_a_comeback_delivered_before_its_cancellation_starts_nothing(runtime, work, outbox):
    from datetime import timedelta

    from worker.events import Event, EventKind, Member, Membership, utcnow
    from worker.intake import submit

    member = Member(email=JANE, first_name="Jane")
    now = utcnow()

    def event(kind, name, at):
        return Event(
            source="stripe",
            name=name,
            kind=kind,
            occurred_at=at,
            member=member,
            membership=Membership("price_1"),
            subscription_id="sub_1",
        )

    back = event(EventKind.REACTIVATED, "customer.subscription.created", now)
    gone = event(EventKind.CANCELLED, "customer.subscription.deleted", now - timedelta(hours=1))
    submit(runtime.store, runtime.queue, back, 3600)
    work()
    submit(runtime.store, runtime.queue, gone, 3600)
    work()
    assert outbox() == []
    assert runtime.store.member_sequence_ids(member_key(JANE)) == []
