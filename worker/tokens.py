"""Signed, scoped tokens for the links in emails.

A token names a sequence, never an address, and carries its scope in the signature's salt:
a feedback token cannot unsubscribe and an unsubscribe token cannot open a survey.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class Scope(StrEnum):
    FEEDBACK = "feedback"
    UNSUBSCRIBE = "unsubscribe"


# Survey links stay valid for a season; unsubscribe links never expire (CAN-SPAM, RFC 8058).
MAX_AGE = {Scope.FEEDBACK: 120 * 24 * 3600, Scope.UNSUBSCRIBE: None}


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
