"""Is this an email address Farewell may write to? One rule for every way an address
arrives: a webhook's payload (hooks/sources) and a provider's API (worker/stripe_api.py)."""

from __future__ import annotations

import re

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
_EMAIL = re.compile(
    r"[^@\s<>(),;:\"\[\]\\]{1,64}"  # local part: no spaces, brackets or separators
    r"@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\.[A-Za-z]{2,63}"  # a real domain
)


def is_email(value: str) -> bool:
    """One address, nothing around it: no display name, no second address, no line
    break (which would start a new header in the message)."""
    return len(value) <= MAX_EMAIL_LENGTH and _EMAIL.fullmatch(value) is not None


# --- can it be sent at all? ---------------------------------------------------------------
#
# Decided once, when its cancellation is handled, so an address no transport can carry is
# recorded (suppressed, with the reason, which `flask --app hooks suppress list` shows)
# instead of failing and retrying for hours. Two kinds cannot be sent:
# - control characters (`a\x01b@example.com`): no SMTP server or API takes them;
# - non-ASCII (`josé@exemplo.com.br`) on a transport that does not carry SMTPUTF8 addresses:
#   Farewell's SMTP client does not ask for SMTPUTF8, and the HTTP APIs refuse such
#   recipients. The outbox and console transports write the message as it is.

UTF8_TRANSPORTS = frozenset({"outbox", "console"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unsendable_reason(email: str, transport: str) -> str | None:
    """Why `email` cannot be sent through `transport` (FAREWELL_MAIL_TRANSPORT), or None."""
    if _CONTROL.search(email):
        return "control character in the address"
    if not email.isascii() and transport not in UTF8_TRANSPORTS:
        return f"non-ASCII address, and the {transport} transport does not send SMTPUTF8"
    return None
