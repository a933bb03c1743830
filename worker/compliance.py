"""What commercial email must carry before the worker may send any. Pure.

CAN-SPAM asks every commercial message for the sender's valid physical postal address; a
playbook step on the marketing stream is commercial, so FAREWELL_POSTAL_ADDRESS must be set
while the playbook has one (`playbook check` and the worker's start-up say so).
"""

from __future__ import annotations

from .playbook import Playbook
from .settings import Settings, SettingsError


def marketing_steps(playbook: Playbook) -> list[str]:
    """ "default: winback", "membership 3006: winback", ... for each marketing step."""
    plans = {"default": playbook.default} | {
        f"membership {mid}": steps for mid, steps in playbook.memberships.items()
    }
    return [
        f"{plan}: {step.template}"
        for plan, steps in plans.items()
        for step in steps
        if step.stream == "marketing"
    ]


def require_postal_address(settings: Settings, playbook: Playbook) -> None:
    """Raise SettingsError naming the steps when marketing mail would go out without it."""
    if settings.postal_address.strip():
        return
    steps = marketing_steps(playbook)
    if steps:
        raise SettingsError(
            "FAREWELL_POSTAL_ADDRESS is not set, but the playbook has marketing emails ("
            + "; ".join(steps)
            + "). Commercial email must show the sender's postal address (CAN-SPAM): set it "
            'to your business address, e.g. "Example Club, 1 Main St, Springfield, IL 62701, '
            'USA", or move those steps off the marketing stream.'
        )
