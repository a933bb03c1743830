"""Mail transports, selected by `FAREWELL_MAIL_TRANSPORT`. Each has `name` and
`send(email, commit) -> message id`, and raises only `worker.mail.errors` classes.

`commit` is called once, just before the transport's point of no return (SMTP: the
envelope accepted, before DATA; an HTTP API: before the request; the outbox: before the
rename; the console: before printing). If it raises, the transport sends nothing and lets
the exception through: the send claim was taken over meanwhile (worker/delivery.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..settings import Settings
from .errors import MailConfigError
from .message import OutgoingEmail

Commit = Callable[[], None]


def no_commit() -> None:
    """The commit of a send outside any claim (previews, test emails)."""


class Transport(Protocol):
    name: str

    def send(self, email: OutgoingEmail, commit: Commit = no_commit) -> str: ...


def get_transport(settings: Settings) -> Transport:
    kind = settings.mail_transport
    if kind == "outbox":
        from .outbox import OutboxTransport

        return OutboxTransport(settings.outbox_dir)
    if kind == "console":
        from .console import ConsoleTransport

        return ConsoleTransport()
    if kind == "smtp":
        from .smtp import SmtpConfig, SmtpTransport

        return SmtpTransport(SmtpConfig.from_url(settings.smtp_url, settings.smtp_timeout))
    if kind in ("postmark", "mailgun", "sendgrid"):
        from .providers import http_transport

        return http_transport(settings)
    raise MailConfigError(
        f"FAREWELL_MAIL_TRANSPORT={kind!r} is not one of "
        "outbox, console, smtp, postmark, mailgun, sendgrid"
    )
