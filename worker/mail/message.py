"""Our outgoing message, and its MIME form for transports that speak RFC 5322."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import message_from_bytes, message_from_string
from email.message import EmailMessage
from email.policy import default
from email.utils import formatdate, parseaddr
from functools import lru_cache

from .errors import MailConfigError, RecipientRejected

# Control characters (CR and LF among them) end a header line or confuse a reader: never
# written into an address or a header value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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

    def __post_init__(self) -> None:
        # Addresses and the values we build (Message-ID, List-* headers) are refused whole:
        # a line break in one would add a header (Reply-To, Bcc) to the message. Names and
        # the subject are text, folded to one line by `clean_header` when written.
        if _CONTROL.search(self.to) or " " in self.to:
            raise RecipientRejected(
                "the recipient's address holds a control character or a space",
                reason="invalid_address",
            )
        if _CONTROL.search(self.sender):
            raise MailConfigError("FAREWELL_MAIL_FROM holds a control character")
        for name, value in (("Message-ID", self.message_id), *self.headers.items()):
            if _CONTROL.search(name) or _CONTROL.search(value):
                raise ValueError(f"the {name!r} header holds a control character")


@lru_cache(maxsize=64)
def split_address(value: str) -> tuple[str, str]:
    """(name, address) of "Name <addr>": parseaddr, remembered (the sender is the same on
    every email, and parsing it was a visible part of a send's CPU)."""
    return parseaddr(value)


def clean_header(value: str) -> str:
    """Names come from webhooks and APIs: whitespace (CR and LF included) folds to one
    space, other control characters go."""
    return " ".join(_CONTROL.sub(" ", value).split())


_clean = clean_header


_READ_BACK = default.clone(refold_source="none")
_READ_BACK_UTF8 = _READ_BACK.clone(utf8=True)


def to_mime(email: OutgoingEmail) -> EmailMessage:
    """The message as an EmailMessage: `wire_bytes` read back, so every transport writes
    the same headers. An SMTPUTF8 address (non-ASCII, written as it is) keeps a UTF-8
    policy, so the message can be written out again."""
    data = wire_bytes(email)
    # Headers are written back as read: refolding them would undo our encoded-words.
    if data.isascii():
        return message_from_bytes(data, policy=_READ_BACK)  # type: ignore[return-value]
    return message_from_string(data.decode("utf-8"), policy=_READ_BACK_UTF8)  # type: ignore[return-value]


def wire_bytes(email: OutgoingEmail) -> bytes:
    """The message as SMTP sends it (CRLF line ends). Written out directly: building it with
    the email package's default policy was the largest CPU cost of a send, and that policy
    would also decode a name's literal "=?...?=" into an encoded-word on the way."""
    return _wire_bytes(email)


def _header(value: str) -> str:
    """A header value as written: ASCII as it is (a long URL stays on one line), anything
    else as encoded-words. So is text holding "=?": a reader would decode it as an
    encoded-word (a name "=?utf-8?q?evil=40attacker.test?=" shown as evil@attacker.test)."""
    value = _clean(value)
    return value if value.isascii() and "=?" not in value else encoded_words(value)


def encoded_words(value: str, chunk_bytes: int = 39) -> str:
    """RFC 2047 base64 encoded-words, one per folded line: each holds at most
    `chunk_bytes` of UTF-8 (a 64-character word, so even a first line with a long header
    name stays within 76) and never splits a character. The email package's Header does
    the same with far more work per character."""
    words: list[str] = []
    chunk = bytearray()
    for char in value:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > chunk_bytes:
            words.append(_encoded_word(chunk))
            chunk = bytearray()
        chunk += encoded
    if chunk:
        words.append(_encoded_word(chunk))
    return "\r\n ".join(words)


def _encoded_word(data: bytes | bytearray) -> str:
    return f"=?utf-8?b?{base64.b64encode(data).decode('ascii')}?="


_SPECIALS = re.compile(r'[][\\()<>@,:;".]')  # RFC 5322: a name with one is quoted


def _address(name: str, addr: str) -> str:
    """`Name <addr>`; the name encoded as `_header` does, else quoted if it needs it. A
    non-ASCII address is written as it is (SMTPUTF8; only transports that carry it get one,
    see worker/addresses.py)."""
    name = _clean(name)
    if not name:
        return addr
    if not name.isascii() or "=?" in name:
        shown = encoded_words(name)
    elif _SPECIALS.search(name):
        shown = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        shown = name
    return f"{shown} <{addr}>"


_LINE_END = re.compile(r"\r\n|\r|\n")


def _lines(body: str) -> str:
    """Line ends normalized and a final newline, as EmailMessage.set_content does (it
    splits like bytes.splitlines: on CR, LF and CRLF only)."""
    lines = _LINE_END.split(body)
    if lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def _wire_bytes(email: OutgoingEmail) -> bytes:
    """Written out directly: the structure compat32's MIMEMultipart and MIMEText produce
    (base64 parts in utf-8), without building and walking a message tree."""
    sender_name, sender_addr = split_address(email.sender)
    boundary = f"=_{secrets.token_hex(16)}"  # "_" never occurs in base64
    lines = [
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "MIME-Version: 1.0",
        f"From: {_address(sender_name, sender_addr)}",
        f"To: {_address(email.to_name, email.to)}",
        f"Subject: {_header(email.subject)}",
        f"Date: {formatdate(localtime=False, usegmt=True)}",
        f"Message-ID: {_clean(email.message_id)}",
    ]
    lines += [f"{name}: {_header(value)}" for name, value in email.headers.items()]
    lines.append("")
    for subtype, body in (("plain", email.text), ("html", email.html)):
        lines += [
            f"--{boundary}",
            f'Content-Type: text/{subtype}; charset="utf-8"',
            "MIME-Version: 1.0",
            "Content-Transfer-Encoding: base64",
            "",
            *_base64_lines(_lines(body).encode("utf-8")),
        ]
    lines += [f"--{boundary}--", ""]
    return "\r\n".join(lines).encode("utf-8")  # ASCII but for an SMTPUTF8 address


def _base64_lines(data: bytes, width: int = 76) -> list[str]:
    encoded = base64.b64encode(data).decode("ascii")
    return [encoded[i : i + width] for i in range(0, len(encoded), width)]
