"""Pure policy: won back or came back, and which send-time conditions skip a step."""

from __future__ import annotations

from datetime import timedelta

import pytest

from worker.playbook import Step
from worker.sequences import comeback_outcome, skip_reason
from worker.store import Feedback

DAY = 86400.0
WINBACK = Step("winback", timedelta(days=14), "marketing")
FEEDBACK_REQUEST = Step("feedback_request", timedelta(0), "transactional")


@pytest.mark.parametrize(
    ("sent_at", "now", "expected"),
    [
        (None, 100 * DAY, "came_back"),  # no win-back email went out
        (10 * DAY, 10 * DAY + 1, "won_back"),
        (10 * DAY, 40 * DAY, "won_back"),  # exactly at the end of a 30-day window
        (10 * DAY, 40 * DAY + 1, "came_back"),
        (10 * DAY, 9 * DAY, "came_back"),  # came back before the email (clock skew)
    ],
)
def test_comeback_outcome(sent_at, now, expected):
    assert comeback_outcome(sent_at, now, 30) == expected


def _fb(reason="", comment="", no_email=False):
    return Feedback("s", reason, comment, no_email=no_email, at=1.0)


@pytest.mark.parametrize(
    ("step", "feedback", "paused", "skipped_because"),
    [
        (WINBACK, None, False, None),
        (WINBACK, _fb(no_email=True), False, "don't email me"),
        (FEEDBACK_REQUEST, _fb("other", no_email=True), False, "don't email me"),
        (WINBACK, None, True, "paused"),
        (FEEDBACK_REQUEST, None, True, None),  # a pause holds off marketing only
        (
            Step("w", timedelta(0), "marketing", only_if_no_feedback=True),
            _fb("other"),
            False,
            "feedback already given",
        ),
        (
            Step("w", timedelta(0), "marketing", only_if_no_feedback=True),
            _fb(comment="hi"),
            False,
            "feedback already given",
        ),
        (Step("w", timedelta(0), "marketing", only_if_no_feedback=True), None, False, None),
        (
            Step("w", timedelta(0), "marketing", only_if_reason=("temporary",)),
            None,
            False,
            "reason is not one of temporary",
        ),
        (
            Step("w", timedelta(0), "marketing", only_if_reason=("temporary",)),
            _fb("temporary"),
            False,
            None,
        ),
        (
            Step("ask", timedelta(0), "transactional", only_if_no_reason=True),
            _fb("too_expensive"),
            False,
            "already told us why",
        ),
        (
            Step("ask", timedelta(0), "transactional", only_if_no_reason=True),
            _fb(comment="hi"),
            False,
            None,
        ),
        (FEEDBACK_REQUEST, _fb("too_expensive"), False, None),  # the rule is the step's data
    ],
)
def test_skip_reason(step, feedback, paused, skipped_because):
    reason = skip_reason(step, feedback, paused)
    if skipped_because is None:
        assert reason is None
    else:
        assert skipped_because in reason
