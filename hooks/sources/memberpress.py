"""MemberPress (Developer Tools add-on).

POST JSON `{"event", "type", "data"}`, sometimes without a JSON content type. The key is
sent in the `MEMBERPRESS-WEBHOOK-KEY` header, or by some versions only as `?key=` in the
URL. Subscription events carry `data.member` and `data.membership`; `member-deleted` carries
the member itself as `data`. Payloads reflect state at send time, so the event time is
when we receive it.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Request

from worker.events import Event, EventKind, utcnow

from .errors import Ignored
from .payload import (
    check_shared_key,
    get_member,
    get_membership,
    get_object,
    get_text,
    load_object,
    parse_wp_datetime,
)

SECRET_SETTING = "memberpress_key"  # noqa: S105 - a field name, not a secret
KEY_HEADER = "MEMBERPRESS-WEBHOOK-KEY"

EVENT_KINDS = {
    "subscription-stopped": EventKind.CANCELLED,
    "subscription-expired": EventKind.EXPIRED,
    "subscription-paused": EventKind.PAUSED,
    "subscription-resumed": EventKind.RESUMED,
    "subscription-created": EventKind.REACTIVATED,
    "member-deleted": EventKind.ERASED,
}


def authenticate(request: Request, secret: str) -> None:
    check_shared_key(request.headers.get(KEY_HEADER) or request.args.get("key"), secret)


def parse(body: bytes, headers: Mapping[str, str] | None = None) -> Event | Ignored:
    payload = load_object(body)
    name = get_text(payload, "event", "event", required=True)
    kind = EVENT_KINDS.get(name)
    if kind is None:
        return Ignored(f"event {name!r} is not one Farewell acts on")
    data = get_object(payload, "data", "data")

    if kind is EventKind.ERASED:
        return Event(
            source="memberpress",
            name=name,
            kind=kind,
            occurred_at=utcnow(),
            member=get_member(data, "data"),
            raw=payload,
        )

    member = get_member(get_object(data, "member", "data.member"), "data.member")
    membership = get_membership(data, "membership", "data.membership")
    return Event(
        source="memberpress",
        name=name,
        kind=kind,
        occurred_at=utcnow(),
        member=member,
        membership=membership,
        subscription_id=get_text(data, "id", "data.id", required=True),
        status=get_text(data, "status", "data.status"),
        access_ends_at=parse_wp_datetime(get_text(data, "expires_at", "data.expires_at")),
        raw=payload,
    )
