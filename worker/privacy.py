"""Keep members' addresses and our secrets out of logs."""

from __future__ import annotations

import re


def mask_email(email: str) -> str:
    """'jane.doe@example.com' -> 'j***@example.com'."""
    local, sep, domain = email.partition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"


_ADDRESS = re.compile(r"[^\s'\"<>(),;:\[\]]+@[A-Za-z0-9.-]+")


def mask_emails_in(text: str) -> str:
    """Mask every address inside free text, such as a provider's error message."""
    return _ADDRESS.sub(lambda m: mask_email(m.group(0)), text)
