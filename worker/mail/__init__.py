"""Mail transports, selected by `FAREWELL_MAIL_TRANSPORT`. Each has `name` and
`send(OutgoingEmail) -> message id`, and raises only `worker.mail.errors` classes."""

from __future__ import annotations

from typing import Protocol

from ..settings import Settings
from .errors import MailConfigError
from .message import OutgoingEmail


class Transport(Protocol):
    name: str

    def send(self, email: OutgoingEmail) -> str: ...


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
