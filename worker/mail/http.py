"""What the HTTP API transports (postmark, mailgun, sendgrid) share: one `requests.Session`
per worker process, explicit (connect, read) timeouts, and one mapping from HTTP outcomes
to our error family, so each provider module only says what its own bodies mean.

At most once, never silently: a failure known to have happened before the request reached
the provider (no connection) is retried; a lost reply (read timeout, connection dropped
mid-request) means the provider may have accepted the message, so it is reported as
`sent_nothing=False` and the job keeps its send claim instead of risking a duplicate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Protocol, TypeVar

import requests
from urllib3.exceptions import ConnectTimeoutError

from ..privacy import mask_emails_in
from .errors import MailConfigError, TransientMailError

USER_AGENT = "farewell-mail/1"
# A provider asking us to wait longer than this is treated as this: the job still retries.
MAX_RETRY_AFTER = 6 * 3600.0


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 20.0

    def pair(self) -> tuple[float, float]:
        return (self.connect, self.read)


DEFAULT_TIMEOUTS = Timeouts()


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = False  # never pick up a proxy or .netrc credentials by accident
    return session


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


def _connection_never_made(exc: requests.ConnectionError) -> bool:
    """True when the request cannot have reached the server (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # urllib3's NewConnectionError and NameResolutionError are ConnectTimeoutErrors.
    return isinstance(reason, ConnectTimeoutError)


def post(
    session: requests.Session, provider: str, url: str, timeouts: Timeouts, **kwargs: Any
) -> requests.Response:
    """POST, turning network failures into `TransientMailError` with the right `sent_nothing`."""
    try:
        return session.post(url, timeout=timeouts.pair(), allow_redirects=False, **kwargs)
    except requests.ConnectionError as exc:
        if _connection_never_made(exc):
            raise TransientMailError(f"{provider}: cannot connect: {type(exc).__name__}") from exc
        raise TransientMailError(
            f"{provider}: connection lost before the reply: {type(exc).__name__}",
            sent_nothing=False,
        ) from exc
    except requests.Timeout as exc:  # ReadTimeout: the request was sent, the reply is lost
        raise TransientMailError(
            f"{provider}: no reply within {timeouts.read:g}s", sent_nothing=False
        ) from exc
    except requests.RequestException as exc:
        raise TransientMailError(
            f"{provider}: request failed: {type(exc).__name__}", sent_nothing=False
        ) from exc


class _HasTimeouts(Protocol):
    @property
    def timeouts(self) -> Timeouts: ...


ConfigT = TypeVar("ConfigT", bound=_HasTimeouts)


class ApiTransport(Generic[ConfigT]):
    """Base of the HTTP API transports: the provider's config, one session per worker
    process, and POSTs whose network failures are already mapped by `post`."""

    name = "api"

    def __init__(self, config: ConfigT) -> None:
        self.config = config
        self.session = new_session()

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return post(self.session, self.name, url, self.config.timeouts, **kwargs)

    def close(self) -> None:
        self.session.close()


def json_body(response: requests.Response) -> Mapping[str, Any]:
    try:
        data = response.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, Mapping) else {}


def describe(provider: str, response: requests.Response, detail: str) -> str:
    """An error message for logs and /healthz: status and the provider's words, no addresses."""
    detail = mask_emails_in(" ".join(detail.split()))[:300]
    return f"{provider}: HTTP {response.status_code}: {detail or response.reason}"


def raise_for_common_status(provider: str, response: requests.Response, detail: str) -> None:
    """The classes every provider shares; provider modules handle their own codes first.

    429, 408 and 5xx are transient (honouring Retry-After); 401 and 403 are a bad key or an
    unverified sender; any other 4xx means our request is wrong: also a configuration error,
    kept retryable, because suppressing a member for our own mistake would be worse.
    """
    status = response.status_code
    message = describe(provider, response, detail)
    if status in (408, 429) or status >= 500:
        raise TransientMailError(
            message, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if status >= 300:
        raise MailConfigError(message)
