"""Paid Memberships Pro, through the PMPro Zapier add-on's "Changed Membership Level" push.

The add-on POSTs JSON (with a malformed `Content-Type: : application/json`, so the raw body is
parsed) and signs nothing, so the URL carries our key: `/hooks/pmpro?key=...`. The body is
`{"user_id", "username", "user_email", "old_level_status", "level", "trigger"}`. When a
member loses their level, `level` is just `{"ID": "0"}`: that is a cancellation. Any other
level is a member getting a level: a comeback when they had cancelled. The payload has no
names, subscription id or event time, and the add-on ignores HTTP errors (a refused push is
lost), so a push Farewell cannot use is answered 200 with the reason.

`old_level_status` is not trusted: the add-on reads it from the member's oldest non-active
row, so it can be stale (an admin cancellation pushed as `cancelled`). It is kept in the raw
payload only.

Idempotency is by state (worker/subscription_state.py), the user standing in for the
subscription: the state is the level the member holds (`level-3`, or `none`). A double fire
of one change (the member's click and the gateway's notification) is a duplicate; a
cancellation and a rejoin on the same day are two changes, each acted on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Request

from worker.events import Event, EventKind, Member, Membership, utcnow

from .errors import Ignored
from .payload import check_shared_key, get_email, get_text, load_object

SECRET_SETTING = "pmpro_key"  # noqa: S105 - a field name, not a secret
NAME = "pmpro_after_change_membership_level"
ACK_UNUSABLE = True  # an authenticated body Farewell cannot use: 200, never a 4xx


def authenticate(request: Request, secret: str) -> None:
    check_shared_key(request.args.get("key"), secret)


def parse(body: bytes, headers: Mapping[str, str] | None = None) -> Event | Ignored:
    return from_payload(load_object(body), utcnow())


def from_payload(payload: dict[str, Any], now: datetime) -> Event | Ignored:
    """The push as received at `now` (the payload carries no time of its own)."""
    level = payload.get("level")
    level_id = get_text(level, "ID", "level.ID") if isinstance(level, dict) else ""
    if not level_id:
        return Ignored("no level.ID: not a change of membership level")
    email = get_email(payload, "user_email", "user_email")
    if level_id == "0":
        kind, state, membership = EventKind.CANCELLED, "none", None
    else:
        kind, state = EventKind.REACTIVATED, f"level-{level_id}"
        membership = Membership(id=level_id, title=get_text(level, "name", "level.name"))
    user_id = get_text(payload, "user_id", "user_id")
    member = Member(email=email, id=user_id)
    return Event(
        source="pmpro",
        name=NAME,
        kind=kind,
        occurred_at=now,
        member=member,
        membership=membership,
        # No subscription id in the payload: the user stands in (their address if need be).
        subscription_id=f"user-{user_id}" if user_id else f"member-{member.key}",
        status=state,
        raw=payload,
    )
