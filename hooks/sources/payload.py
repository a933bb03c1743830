"""Reading untrusted JSON: every error names the field, so a 400 tells the sender what to fix.

Lenient where it matters: only what Farewell cannot work without is required (the member's
email, the event's name). An optional field that is missing, `false`, `null` or oddly typed
never refuses a delivery (MemberPress sends `"membership": false` for a deleted membership,
and refused cancellations are lost for good): it is read as absent and noted as an oddity,
which the receiver logs and counts (farewell_payload_oddities_total).
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from worker.addresses import MAX_EMAIL_LENGTH, is_email
from worker.events import Member, Membership
from worker.locales import normalize_locale

from .errors import AuthError, PayloadError

MAX_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_oddities: ContextVar[list[str] | None] = ContextVar("payload_oddities", default=None)


@contextmanager
def collect_oddities() -> Iterator[list[str]]:
    """Collect the oddities noted while parsing one delivery."""
    found: list[str] = []
    token = _oddities.set(found)
    try:
        yield found
    finally:
        _oddities.reset(token)


def note_oddity(path: str, what: str) -> None:
    """An optional field read as absent: `path` names it, `what` says why."""
    found = _oddities.get()
    if found is not None:
        found.append(f"{path} {what}")


def load_object(body: bytes) -> dict[str, Any]:
    """Parse the raw body as a JSON object, whatever the content type said."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not UTF-8 (byte {exc.start})") from exc
    if not text.strip():
        raise PayloadError("body is empty; expected a JSON object")
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise PayloadError("body is nested too deeply") from exc
    except ValueError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise PayloadError(f"body must be a JSON object, not {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return {**names, type(None): "null"}.get(type(value), "a number")


def get_object(data: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        raise PayloadError(f"{path} is missing")
    if not isinstance(value, dict):
        raise PayloadError(f"{path} must be an object, not {_json_type(value)}")
    return value


def get_text(
    data: dict[str, Any], key: str, path: str, *, required: bool = False, max_length: int = MAX_NAME
) -> str:
    """A string field; ids often arrive as numbers, so ints are accepted and stringified.
    A required field that is unusable is a PayloadError; an optional one is read as ""
    (an oddity), except `false`, which PHP plugins write for "none"."""
    value = data.get(key)
    if value is None or value == "" or (value is False and not required):
        if required:
            raise PayloadError(f"{path} is missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return _optional(required, path, f"must be a string, not {_json_type(value)}")
    text = str(value).strip()
    if len(text) > max_length:
        return _optional(required, path, f"is longer than {max_length} characters")
    if any(ch in text for ch in "\r\n\x00"):
        return _optional(required, path, "must be a single line")
    if _CONTROL.search(text) and not required:
        note_oddity(path, "has control characters (removed)")
        return _CONTROL.sub("", text)
    return text


def _optional(required: bool, path: str, problem: str) -> str:
    if required:
        raise PayloadError(f"{path} {problem}")
    note_oddity(path, problem)
    return ""


def get_email(data: dict[str, Any], key: str, path: str) -> str:
    email = get_text(data, key, path, required=True, max_length=MAX_EMAIL_LENGTH)
    if not is_email(email):
        raise PayloadError(f"{path} is not an email address")
    return email


def parse_wp_datetime(value: str) -> datetime | None:
    """WordPress 'Y-m-d H:i:s' in UTC; MemberPress writes zeros for 'never'."""
    if not value or value.startswith("0000-00-00"):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def check_shared_key(given: str | None, expected: str) -> None:
    """Constant-time comparison of a shared key."""
    if not given:
        raise AuthError("missing key")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthError("wrong key")


def check_signed(
    candidates: list[str],
    expected: str,
    timestamp: int,
    tolerance: int,
    label: str,
    now: float | None = None,
) -> None:
    """Raise AuthError unless one of the candidate signatures is `expected` (each compared
    in constant time, no early exit: the time taken does not tell which matched) and the
    signed `timestamp` is within `tolerance` seconds of now. `label` names the timestamp."""
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not matched:
        raise AuthError("no v1 signature matches the body")
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance:
        raise AuthError(f"{label} is {int(age)} s from now (tolerance {tolerance} s)")


MAX_TIMESTAMP_DIGITS = 12  # Unix seconds until the year 33658: longer is not a time


def signed_timestamp(text: str) -> int | None:
    """A signature header's Unix seconds, or None. ASCII digits only (`isdigit()` alone
    takes "²", which int() refuses) and few of them (int() refuses 4,300+ digits, and a
    huge int cannot be compared with a float time)."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_TIMESTAMP_DIGITS:
        return int(text)
    return None


def parse_iso_datetime(value: str) -> datetime | None:
    """ISO 8601 ('2024-01-02T10:00:00', optionally with an offset or Z); naive means UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_unix(value: Any) -> datetime | None:
    """A Unix timestamp (Stripe's dates); anything else is 'unknown'."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def get_bool(data: dict[str, Any], key: str, path: str) -> bool:
    value = data.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        note_oddity(path, f"must be true or false, not {_json_type(value)}")
        return False
    return value


def get_member(data: dict[str, Any], path: str) -> Member:
    """A member object in the common shape (email, id, first_name, last_name, locale);
    `path` names it in error messages, e.g. `data.member`."""
    return Member(
        email=get_email(data, "email", f"{path}.email"),
        id=get_text(data, "id", f"{path}.id"),
        first_name=get_text(data, "first_name", f"{path}.first_name"),
        last_name=get_text(data, "last_name", f"{path}.last_name"),
        locale=normalize_locale(get_text(data, "locale", f"{path}.locale")),
    )


def get_membership(data: dict[str, Any], key: str, path: str) -> Membership | None:
    """The `{id, title}` object at `key`, or None: `false` (MemberPress, when the
    membership was deleted in WordPress), missing, or without an id (an oddity)."""
    obj = data.get(key)
    if obj is None or obj is False:
        note_oddity(path, "is missing" if obj is None else "is false (deleted at the source?)")
        return None
    if not isinstance(obj, dict):
        note_oddity(path, f"must be an object, not {_json_type(obj)}")
        return None
    membership_id = get_text(obj, "id", f"{path}.id")
    if not membership_id:
        note_oddity(f"{path}.id", "is missing")
        return None
    return Membership(id=membership_id, title=get_text(obj, "title", f"{path}.title"))
