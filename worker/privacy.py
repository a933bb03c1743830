"""Keep members' addresses and our secrets out of logs."""

from __future__ import annotations

import ipaddress
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


def mask_ip(address: str) -> str:
    """A client address with its host part hidden: '203.0.113.7' -> '203.0.113.x',
    '2001:db8:1:2::5' -> '2001:db8:1::/48'. Enough to tell "my own server" from "someone
    else" on the Connections page, not enough to single a person out."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if ip.version == 4:
        return ".".join([*str(ip).split(".")[:3], "x"])
    return f"{ipaddress.ip_network(f'{ip}/48', strict=False).network_address}/48"
