"""What a source may say instead of an Event."""

from __future__ import annotations

from dataclasses import dataclass


class AuthError(Exception):
    """Missing or wrong credentials: 401."""


class PayloadError(ValueError):
    """The body is malformed: 400, with this message telling the sender what is wrong."""


@dataclass(frozen=True)
class Ignored:
    """A valid, authenticated delivery Farewell does not act on: 200."""

    reason: str
