"""Logging for web and worker alike: one format switch, an event id on every line, no secrets.

`FAREWELL_LOG_FORMAT=json` writes one JSON object per line (`ts`, `level`, `logger`, `msg`,
`event_id` when one is known, `exc` for tracebacks); `text` (the default) writes readable
lines. Either way, every line passes through `redact`: anything shaped like an email
address is masked and the configured secrets (and credential-bearing URLs such as
FAREWELL_NOTIFY_URL, path included) are replaced by `***`, so a library that logs more
than we asked for (an SMTP reply quoting the recipient, a URL with a key) still cannot
leak them. Control characters are escaped in both formats: one record is one line.

The event id comes from a context variable: the receiver binds it once the payload is
parsed, the worker binds it around each job, and every line logged meanwhile carries it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import fields
from datetime import UTC, datetime
from urllib.parse import urlsplit

from .privacy import mask_email
from .settings import Settings, env_name

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Settings whose values must never be printed, recognised by name so that settings added
# later (other sources, providers) are covered too.
_SECRET_NAME = re.compile(r"(key|secret|password|token)$", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"://[^/@:\s]*:([^/@\s]+)@")
# Settings that are URLs carrying a credential in their path or query (a Slack incoming
# webhook URL is the secret): the whole URL and its path are redacted.
CREDENTIAL_URLS = ("notify_url",)
MIN_SECRET_LENGTH = 6

current_event_id: ContextVar[str | None] = ContextVar("farewell_event_id", default=None)
_secrets: tuple[str, ...] = ()


def set_event_id(event_id: str | None) -> None:
    """Tag the following log lines of this context (request, job) with `event_id`."""
    current_event_id.set(event_id)


@contextlib.contextmanager
def event_context(event_id: str | None) -> Iterator[None]:
    token = current_event_id.set(event_id)
    try:
        yield
    finally:
        current_event_id.reset(token)


def secrets_of(settings: Settings) -> list[str]:
    """The secret values in the settings: fields and FAREWELL_* variables named like a
    key/secret/password/token, and passwords inside URLs (Redis, SMTP)."""
    values: list[str] = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, str) and _SECRET_NAME.search(f.name):
            values.append(value)
        if isinstance(value, str) and f.name in CREDENTIAL_URLS and value:
            values.extend(_url_secrets(value))
        if isinstance(value, str) and "://" in value:
            values.extend(_URL_PASSWORD.findall(value))
    credential_urls = {env_name(name) for name in CREDENTIAL_URLS}
    for name, value in settings.extra.items():
        if _SECRET_NAME.search(name):
            values.append(value)
        if name in credential_urls and value:
            values.extend(_url_secrets(value))
        values.extend(_URL_PASSWORD.findall(value))
    return values


def _url_secrets(url: str) -> list[str]:
    """A credential-bearing URL and its parts past the host, as they show up in messages
    (requests and urllib3 quote the path alone, `url: /services/...`)."""
    parts = urlsplit(url)
    path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
    return [url, path_and_query, parts.path, parts.query]


def set_secrets(values: Iterable[str]) -> None:
    global _secrets
    unique = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}
    _secrets = tuple(sorted(unique, key=len, reverse=True))  # longest first: no partial hits


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


# Control characters (CR, LF, NEL, the Unicode line separators...) in logged text would let
# a request path or a payload start a forged log line: they are written as escapes.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}
# JSON escapes C0 controls itself; these it leaves raw, and line splitters may break on them.
_JSON_RAW = re.compile(r"[\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """`text` on one line: control characters as \\r, \\n, \\t, \\xNN or \\uNNNN."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(0)) or _escape(m.group(0)), text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class TextFormatter(logging.Formatter):
    """One line per record; a traceback follows on lines marked `  | `, so nothing in it
    can pass for a line of its own."""

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        event_id = getattr(record, "event_id", None) or current_event_id.get()
        if event_id and event_id not in line:
            line = f"{line} [event {escape_controls(str(event_id))}]"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for block in (record.exc_text, record.stack_info and self.formatStack(record.stack_info)):
            if block:
                line += "".join(f"\n  | {escape_controls(part)}" for part in block.splitlines())
        return redact(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        event_id = getattr(record, "event_id", None) or current_event_id.get()
        if event_id:
            entry["event_id"] = event_id
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc"] = redact(record.exc_text)
        line = json.dumps(entry, ensure_ascii=False, default=str)
        # Only inside strings, so a \\uNNNN escape keeps the JSON the same.
        return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group(0)):04x}", line)


def formatter_for(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()


def configure(settings: Settings, stream=None) -> None:
    """Install our one handler on the root logger (replacing earlier ones). Called by
    create_app and by `python -m worker`; safe to call again."""
    set_secrets(secrets_of(settings))
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(settings.log_format))
    handler.set_name("farewell")
    for old in [h for h in root.handlers if h.get_name() == "farewell"]:
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level == logging.WARNING or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
