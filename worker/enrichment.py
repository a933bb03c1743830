"""Per-source enrichment: what the worker adds to a source's event before acting on it,
for sources whose webhook leaves something out (Stripe's names a customer, not an address:
its adapter gives the event a `MemberToResolve`).

Each step sits beside the worker's code for its source and is registered in ENRICHERS
under the adapter's name in hooks/sources/__init__.py (the worker never imports hooks). A
step takes the event and the runtime and returns the event to act on, or None when there
is nobody to write to. It may raise: the event's job then fails and RQ retries it
(nothing was sent yet), or, for our own configuration, sends it to the failed registry.
"""

from __future__ import annotations

from collections.abc import Callable

from . import stripe_api
from .events import Event, MemberToResolve
from .runtime import Runtime

Enrich = Callable[[Event, Runtime], Event | None]

ENRICHERS: dict[str, Enrich] = {
    "stripe": stripe_api.enrich,
}


def enrich(event: Event, rt: Runtime) -> Event | None:
    """The event with what its source's step adds; None when no member with an address
    came out of it (a member still to be resolved is never written to)."""
    step = ENRICHERS.get(event.source)
    if step is not None:
        event = step(event, rt)
    if event is None or isinstance(event.member, MemberToResolve):
        return None
    return event
