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
