"""When a sequence's steps go out, however late the cancellation reached Farewell.

A cancellation can arrive long after it happened: WP-Cron ran late, the spool was replayed,
an owner backfilled a month of cancellations. Planning from the cancellation's own time
would send every overdue step at once (the feedback request and the win-back in the same
second). So:

- steps keep their spacing from when Farewell first acts on the cancellation;
- two emails of one sequence are never planned closer than the minimum gap
  (FAREWELL_MIN_EMAIL_GAP_HOURS);
- a cancellation older than FAREWELL_MAX_CANCELLATION_AGE_DAYS gets no feedback request
  (asking "why did you leave?" weeks later is noise); the other steps keep their plan.

Pure: times in, due times out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .playbook import Step


@dataclass(frozen=True)
class Dropped:
    step: Step
    reason: str


@dataclass(frozen=True)
class Plan:
    due: tuple[tuple[Step, datetime], ...]  # in the order they go out
    dropped: tuple[Dropped, ...]


def plan_steps(
    steps: tuple[Step, ...],
    *,
    cancelled_at: datetime,
    acted_at: datetime,
    min_gap: timedelta,
    max_age: timedelta | None,
) -> Plan:
    """Due times for `steps` (see the module docstring). `acted_at`: when Farewell first
    acted on the cancellation; `max_age` None: any age gets every step."""
    age = acted_at - cancelled_at
    due: list[tuple[Step, datetime]] = []
    dropped: list[Dropped] = []
    for step in sorted(steps, key=lambda s: s.delay):  # stable: the playbook's order on ties
        if step.asks_why and max_age is not None and age > max_age:
            reason = (
                f"the cancellation was {age.days} days old when it reached Farewell "
                f"(more than {max_age.days}): no feedback request"
            )
            dropped.append(Dropped(step, reason))
            continue
        at = acted_at + step.delay
        if due and at < due[-1][1] + min_gap:
            at = due[-1][1] + min_gap
        due.append((step, at))
    return Plan(tuple(due), tuple(dropped))
