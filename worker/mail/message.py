"""Our outgoing message, and its MIME form for transports that speak RFC 5322."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr


@dataclass(frozen=True)
class OutgoingEmail:
    sender: str  # "Name <addr>"
    to: str  # bare address
    subject: str
    html: str
    text: str
    message_id: str  # "<...@...>", deterministic per sequence step
    stream: str = "transactional"  # or "marketing"
    headers: Mapping[str, str] = field(default_factory=dict)  # List-Id, List-Unsubscribe...
    tags: Mapping[str, str] = field(default_factory=dict)  # sequence, step: for provider metadata
    to_name: str = ""


def clean_header(value: str) -> str:
    """Names come from webhooks: strip anything that could break out of a header."""
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


_clean = clean_header


def to_mime(email: OutgoingEmail) -> EmailMessage:
    msg = EmailMessage()
    sender_name, sender_addr = parseaddr(email.sender)
    msg["From"] = Address(display_name=_clean(sender_name), addr_spec=sender_addr)
    msg["To"] = Address(display_name=_clean(email.to_name), addr_spec=email.to)
    msg["Subject"] = _clean(email.subject)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = email.message_id
    for name, value in email.headers.items():
        msg[name] = _clean(value)
    msg.set_content(email.text)
    msg.add_alternative(email.html, subtype="html")
    return msg
