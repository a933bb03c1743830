"""Signed, scoped tokens for the links in emails.

A token names a sequence, never an address, and carries its scope in the signature's salt:
a feedback token cannot unsubscribe and an unsubscribe token cannot open a survey.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class Scope(StrEnum):
    FEEDBACK = "feedback"
    UNSUBSCRIBE = "unsubscribe"
    REJOIN = "rejoin"


# Survey links stay valid for a season; unsubscribe links never expire (CAN-SPAM, RFC 8058);
# a rejoin button works for a year (past it, it still leads to the plain rejoin page).
MAX_AGE = {Scope.FEEDBACK: 120 * 24 * 3600, Scope.UNSUBSCRIBE: None, Scope.REJOIN: 365 * 24 * 3600}


@dataclass(frozen=True)
class RejoinLink:
    """What a win-back's rejoin button names: the email (sequence and step) and the code it
    offered ("" when none), so the redirect fills in the code the member was given."""

    sequence_id: str
    step_id: str
    code: str = ""


class InvalidToken(ValueError):
    """Tampered, expired or of the wrong scope."""


@lru_cache(maxsize=16)
def _serializer(secret: str, scope: Scope) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"farewell.{scope.value}")


def make_token(secret: str, scope: Scope, sequence_id: str) -> str:
    return _serializer(secret, scope).dumps(sequence_id)


def read_token(secret: str, scope: Scope, token: str) -> str:
    """Return the sequence id the token was issued for, or raise InvalidToken."""
    try:
        value = _serializer(secret, scope).loads(token, max_age=MAX_AGE[scope])
    except SignatureExpired as exc:
        raise InvalidToken("this link has expired") from exc
    except BadSignature as exc:
        raise InvalidToken("this link is not valid") from exc
    if not isinstance(value, str):
        raise InvalidToken("this link is not valid")
    return value


def make_rejoin_token(secret: str, link: RejoinLink) -> str:
    return _serializer(secret, Scope.REJOIN).dumps([link.sequence_id, link.step_id, link.code])


def read_rejoin_token(secret: str, token: str) -> RejoinLink:
    """The link a rejoin token was issued for, or raise InvalidToken."""
    try:
        value = _serializer(secret, Scope.REJOIN).loads(token, max_age=MAX_AGE[Scope.REJOIN])
    except SignatureExpired as exc:
        raise InvalidToken("this link has expired") from exc
    except BadSignature as exc:
        raise InvalidToken("this link is not valid") from exc
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)):
        raise InvalidToken("this link is not valid")
    return RejoinLink(*value)
