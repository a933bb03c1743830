"""Keep members' addresses and our secrets out of logs."""

from __future__ import annotations


def mask_email(email: str) -> str:
    """'jane.doe@example.com' -> 'j***@example.com'."""
    local, sep, domain = email.partition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"
