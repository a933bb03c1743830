"""worker/catchup.py: when steps go out, however late the cancellation arrived. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from worker.catchup import plan_steps
from worker.playbook import Step

FEEDBACK = Step("feedback_request", timedelta(0), "transactional")
WINBACK = Step("winback", timedelta(days=14), "marketing")
NUDGE = Step("nudge", timedelta(hours=2), "marketing")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def plan(steps, *, late: timedelta, gap_hours: int = 24, max_age_days: int | None = 30):
    return plan_steps(
        tuple(steps),
        cancelled_at=NOW - late,
        acted_at=NOW,
        min_gap=timedelta(hours=gap_hours),
        max_age=timedelta(days=max_age_days) if max_age_days else None,
    )


def test_a_timely_cancellation_keeps_the_playbook_delays():
    result = plan([FEEDBACK, WINBACK], late=timedelta(seconds=1))
    assert [(s.id, due) for s, due in result.due] == [
        ("feedback_request", NOW),
        ("winback", NOW + timedelta(days=14)),
    ]
    assert result.dropped == ()


def test_a_late_cancellation_is_spaced_from_now_not_from_when_it_happened():
    """Ten days late: the win-back is still 14 days after the feedback request."""
    result = plan([FEEDBACK, WINBACK], late=timedelta(days=10))
    assert [due for _, due in result.due] == [NOW, NOW + timedelta(days=14)]


def test_two_emails_are_never_closer_than_the_minimum_gap():
    result = plan([FEEDBACK, NUDGE, WINBACK], late=timedelta(0))
    dues = [due for _, due in result.due]
    assert dues == [NOW, NOW + timedelta(hours=24), NOW + timedelta(days=14)]
    assert all(b - a >= timedelta(hours=24) for a, b in pairwise(dues))


def test_a_cancellation_older_than_the_max_age_gets_no_feedback_request():
    result = plan([FEEDBACK, WINBACK], late=timedelta(days=40))
    assert [s.id for s, _ in result.due] == ["winback"]
    [dropped] = result.dropped
    assert dropped.step.id == "feedback_request" and "40 days old" in dropped.reason


def test_max_age_zero_means_any_age():
    result = plan([FEEDBACK, WINBACK], late=timedelta(days=400), max_age_days=None)
    assert [s.id for s, _ in result.due] == ["feedback_request", "winback"]
