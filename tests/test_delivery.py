"""The pure parts of delivery: the send-time pre-check and the claim as a type. Sends
against real transports are in tests/test_send_failures.py and test_provider_transports.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from worker.delivery import SEND, Skip, precheck
from worker.events import Member
from worker.mail.console import ConsoleTransport
from worker.mail.message import OutgoingEmail
from worker.mail.outbox import OutboxTransport
from worker.playbook import Step
from worker.store import Feedback, HeldClaim, Phase, SendChecks, Sequence

SEQ = Sequence("s1", "mk", "e1", "", "", "en", 0.0)
MEMBER = Member(email="jane@example.com")
STEP = Step("feedback_request", timedelta(0), "transactional")
WINBACK = Step("winback", timedelta(days=14), "marketing")
CHECKS = SendChecks(sequence=SEQ, member=None, suppressed=False, feedback=None, paused=False)


def _feedback(**fields) -> Feedback:
    return replace(Feedback("s1", "", "", False, 0.0), **fields)


def test_a_step_with_nothing_against_it_is_sent():
    assert precheck(CHECKS, MEMBER, STEP) == SEND


@pytest.mark.parametrize(
    ("checks", "member", "step", "reason"),
    [
        (replace(CHECKS, sequence=None), MEMBER, STEP, "sequence no longer exists"),
        (
            replace(CHECKS, sequence=replace(SEQ, status="stopped")),
            MEMBER,
            STEP,
            "sequence stopped",
        ),
        (CHECKS, None, STEP, "member erased"),
        (CHECKS, MEMBER, None, "step no longer in the playbook"),
        (replace(CHECKS, suppressed=True), MEMBER, STEP, "address suppressed"),
        (replace(CHECKS, paused=True), MEMBER, WINBACK, "subscription paused: win-back dropped"),
        (
            replace(CHECKS, feedback=_feedback(no_email=True)),
            MEMBER,
            STEP,
            "member answered 'don't email me'",
        ),
    ],
)
def test_why_a_step_is_skipped(checks, member, step, reason):
    assert precheck(checks, member, step) == Skip(reason)


def test_a_paused_subscription_stops_marketing_only():
    assert precheck(replace(CHECKS, paused=True), MEMBER, STEP) == SEND


@pytest.mark.parametrize(
    ("value", "phase", "owner", "busy", "label"),
    [
        ("sending|farewell-a|1.000", Phase.SENDING, "farewell-a", True, "sending"),
        ("sending", Phase.SENDING, None, False, "sending"),  # no heartbeat: never taken over
        ("committing|farewell-a|1.000", Phase.COMMITTING, "farewell-a", False, "committing"),
        ("sent:<m1@example.com>", Phase.SENT, None, False, "sent:<m1@example.com>"),
        ("sent:rejected", Phase.SENT, None, False, "sent:rejected"),
    ],
)
def test_a_held_claim_reads_as_a_type(value, phase, owner, busy, label):
    held = HeldClaim(value)
    assert (held.phase, held.owner, held.busy, held.label) == (phase, owner, busy, label)


EMAIL = OutgoingEmail(
    sender="ana@example.com",
    to="jane@example.com",
    subject="Thanks",
    html="<p>Thanks</p>",
    text="Thanks",
    message_id="<s1.feedback_request@example.com>",
)


class Lost(Exception):
    pass


def _refuse() -> None:
    raise Lost


def test_the_outbox_writes_nothing_when_the_commit_refuses(tmp_path):
    with pytest.raises(Lost):
        OutboxTransport(tmp_path).send(EMAIL, _refuse)
    assert list(tmp_path.iterdir()) == []


def test_the_console_prints_nothing_when_the_commit_refuses(capsys):
    with pytest.raises(Lost):
        ConsoleTransport().send(EMAIL, _refuse)
    assert capsys.readouterr().out == ""
