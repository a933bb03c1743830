"""Paid Memberships Pro, through the PMPro Zapier add-on's "Changed Membership Level" push.

The add-on POSTs JSON (with a malformed Content-Type header, so the raw body is parsed) and
signs nothing, so the URL carries our key: `/hooks/pmpro?key=...`. The body is
`{"user_id", "username", "user_email", "old_level_status", "level"}`. When a member loses
their level, `level` is just `{"ID": "0"}` and `old_level_status` says why (`cancelled`,
`admin_cancelled`, `expired`, ...): that is a cancellation. Any other level is a member
getting a level: a comeback when they had cancelled. The payload has no names or
subscription id, and no event time.

Dedupe identity: the add-on never retries, but PMPro can fire the hook twice for one
change (the member's click and the gateway's notification). With no subscription id, the
identity is the user, the status and the UTC day, so a double fire dedupes while the same
member cancelling again months later is a new cancellation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Request

from worker.events import Event, EventKind, Member, Membership, utcnow

from .errors import Ignored
from .payload import check_shared_key, get_email, get_object, get_text, load_object

SECRET_SETTING = "pmpro_key"  # noqa: S105 - a field name, not a secret
NAME = "pmpro_after_change_membership_level"


def authenticate(request: Request, secret: str) -> None:
    check_shared_key(request.args.get("key"), secret)


def parse(body: bytes, headers: Mapping[str, str] | None = None) -> Event | Ignored:
    return from_payload(load_object(body), utcnow())


def from_payload(payload: dict[str, Any], now: datetime) -> Event | Ignored:
    """The push as received at `now` (the payload carries no time of its own)."""
    level = get_object(payload, "level", "level")
    level_id = get_text(level, "ID", "level.ID", required=True)
    old_status = get_text(payload, "old_level_status", "old_level_status")
    if level_id == "0":
        if not old_status:
            return Ignored("level removed without an old_level_status: not a cancellation")
        kind, status, membership = EventKind.CANCELLED, old_status, None
    else:
        kind, status = EventKind.REACTIVATED, f"level-{level_id}"
        membership = Membership(id=level_id, title=get_text(level, "name", "level.name"))
    user_id = get_text(payload, "user_id", "user_id", required=True)
    return Event(
        source="pmpro",
        name=NAME,
        kind=kind,
        occurred_at=now,
        member=Member(email=get_email(payload, "user_email", "user_email"), id=user_id),
        membership=membership,
        # No subscription id in the payload: the user stands in, and the day keeps a later
        # cancellation by the same member apart (see the module docstring).
        subscription_id=f"user-{user_id}",
        status=f"{status}@{now.date().isoformat()}",
        raw=payload,
    )
