"""Fixtures for follow-up sequences: a playbook of the test's own, and a clock that brings
scheduled steps due without sleeping (RQ's ScheduledJobRegistry read at an injected time)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq.registry import ScheduledJobRegistry

from tests import payloads
from tests.conftest import json_of
from tests.rq_helpers import release_due, run_queued
from worker.runtime import Runtime, set_runtime
from worker.tokens import Scope, make_token


class Clock:
    """`clock.advance(days=14)`: every step job due by then is moved to the queue (as RQ's
    scheduler does at that time) and run by an in-process worker."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def registry(self) -> ScheduledJobRegistry:
        from worker.runtime import runtime

        queue = runtime().queue
        return ScheduledJobRegistry(queue=queue, serializer=queue.serializer)

    def scheduled(self) -> list[str]:
        return self.registry().get_job_ids()

    def advance(self, **delta: float) -> list[str]:
        from worker.runtime import runtime

        self.offset += timedelta(**delta)
        queue = runtime().queue
        ran: list[str] = []
        while True:  # jobs run now may plan steps that are already due at the new time
            run_queued(queue)
            due = release_due(queue, self.now().timestamp())
            if not due:
                return ran
            ran += due


@pytest.fixture
def clock(runtime) -> Clock:
    return Clock()


@pytest.fixture
def use_playbook(settings, runtime, tmp_path: Path):
    """Install a runtime whose playbook is `text`; `files` are written beside it (pools).
    Other settings may be overridden by keyword."""
    made: list[Runtime] = []

    def install(text: str, files: dict[str, str] | None = None, **overrides) -> Runtime:
        folder = tmp_path / f"playbook{len(made)}"
        folder.mkdir()
        for name, content in (files or {}).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(content)
        path = folder / "playbook.toml"
        path.write_text(text)
        rt = Runtime(replace(settings, playbook_path=path, **overrides))
        set_runtime(rt)
        made.append(rt)
        return rt

    yield install
    for rt in made:
        rt.close()


# --- helpers shared by the sequence tests ---------------------------------------------------

JANE = "jane.doe@example.com"
RESUMED = "subscription-resumed"
CREATED = "subscription-created"

POOL_PLAYBOOK = """
[default]
steps = [
  { template = "winback", delay = "1d", stream = "marketing", incentive = "membership" },
]

[incentives.codes]
pool = "coupons.txt"
when_exhausted = "%s"
offer = { en = "a free month" }

[memberships.3006]
incentive = "codes"
"""


def subjects(messages) -> list[str]:
    return sorted(m["Subject"] for m in messages)


def step_message(messages, step: str):
    """The one message sent for a step (outbox files are not in sending order)."""
    [message] = [m for m in messages if f".{step}@" in m["Message-ID"]]
    return message


def cancel(post_hook, **kw) -> str:
    """Deliver a MemberPress cancellation; its event id (the sequence id)."""
    reply = post_hook.memberpress(payloads.memberpress(**kw))
    assert reply.status_code == 202, reply.data
    return json_of(reply)["event_id"]


def unsubscribe_path(seq_id: str, settings) -> str:
    return f"/unsubscribe/{make_token(settings.secret_key, Scope.UNSUBSCRIBE, seq_id)}"
