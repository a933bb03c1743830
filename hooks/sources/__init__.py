"""Webhook sources: one module per plugin, each exposing the same small interface.

    SECRET_SETTING: str                         the Settings field holding its secret
    authenticate(request, secret) -> None        raises AuthError
    parse(body: bytes, headers) -> Event | Ignored   raises PayloadError (headers: the
                                                 request's, for sources that put the event
                                                 name there; may be omitted in unit tests)
    ping(request, body) -> str | None            optional; a detail string when the delivery
                                                 is the plugin's unsigned activation ping,
                                                 answered 200 and recorded, never parsed
    ACK_UNUSABLE: bool                           optional; True: an authenticated body that
                                                 raises PayloadError is answered 200
                                                 {"status": "invalid"}, not 400 (plugins
                                                 that drop or disable on a 4xx)

The receiver owns the HTTP flow; sources never build responses. To add a plugin, copy
memberpress.py, register it below and add a test file (see docs/adding-a-source.md).
"""

from __future__ import annotations

from types import ModuleType

from . import memberpress, pmpro, standard, stripe, woocommerce
from .errors import AuthError, Ignored, PayloadError

SOURCES: dict[str, ModuleType] = {
    "memberpress": memberpress,
    "woocommerce": woocommerce,
    "pmpro": pmpro,
    "stripe": stripe,
    "standard": standard,
}

__all__ = ["SOURCES", "AuthError", "Ignored", "PayloadError"]
