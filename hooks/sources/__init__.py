"""Webhook sources: one module per plugin, each exposing the same small interface.

    SECRET_SETTING: str                         the Settings field holding its secret
    authenticate(request, secret) -> None        raises AuthError
    parse(body: bytes) -> Event | Ignored        raises PayloadError

The receiver owns the HTTP flow; sources never build responses. To add a plugin, copy
memberpress.py, register it below and add a test file (see docs/adding-a-source.md).
"""

from __future__ import annotations

from types import ModuleType

from . import memberpress
from .errors import AuthError, Ignored, PayloadError

SOURCES: dict[str, ModuleType] = {
    "memberpress": memberpress,
}

__all__ = ["SOURCES", "AuthError", "Ignored", "PayloadError"]
