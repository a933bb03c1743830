"""Logging for web and worker alike: one format switch, an event id on every line, no secrets.

`FAREWELL_LOG_FORMAT=json` writes one JSON object per line (`ts`, `level`, `logger`, `msg`,
`event_id` when one is known, `exc` for tracebacks); `text` (the default) writes readable
lines. Either way, every line passes through `redact`: anything shaped like an email
address is masked and the configured secrets are replaced by `***`, so a library that
logs more than we asked for (an SMTP reply quoting the recipient, a URL with a key) still
cannot leak them.

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

from .privacy import mask_email
from .settings import Settings

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Settings whose values must never be printed, recognised by name so that settings added
# later (other sources, providers) are covered too.
_SECRET_NAME = re.compile(r"(key|secret|password|token)$", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"://[^/@:\s]*:([^/@\s]+)@")
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
        if isinstance(value, str) and "://" in value:
            values.extend(_URL_PASSWORD.findall(value))
    for name, value in settings.extra.items():
        if _SECRET_NAME.search(name):
            values.append(value)
        values.extend(_URL_PASSWORD.findall(value))
    return values


def set_secrets(values: Iterable[str]) -> None:
    global _secrets
    unique = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}
    _secrets = tuple(sorted(unique, key=len, reverse=True))  # longest first: no partial hits


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        event_id = getattr(record, "event_id", None) or current_event_id.get()
        if event_id and event_id not in line:
            line = f"{line} [event {event_id}]"
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
        return json.dumps(entry, ensure_ascii=False, default=str)


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
