"""Build an HTTP API transport from settings (imported only when one is selected)."""

from __future__ import annotations

from ..settings import Settings
from .http import Timeouts


def http_transport(settings: Settings):
    timeouts = Timeouts(settings.mail_connect_timeout, settings.mail_read_timeout)
    kind = settings.mail_transport
    if kind == "postmark":
        from .postmark import PostmarkConfig, PostmarkTransport

        return PostmarkTransport(
            PostmarkConfig(
                token=settings.postmark_token,
                api_base=settings.postmark_api_base,
                transactional_stream=settings.postmark_transactional_stream,
                marketing_stream=settings.postmark_marketing_stream,
                timeouts=timeouts,
            )
        )
    if kind == "mailgun":
        from .mailgun import MailgunConfig, MailgunTransport

        return MailgunTransport(
            MailgunConfig(
                api_key=settings.mailgun_api_key,
                domain=settings.mailgun_domain,
                region=settings.mailgun_region,
                api_base=settings.mailgun_api_base,
                timeouts=timeouts,
            )
        )
    from .sendgrid import SendgridConfig, SendgridTransport

    return SendgridTransport(
        SendgridConfig(
            api_key=settings.sendgrid_api_key,
            api_base=settings.sendgrid_api_base,
            timeouts=timeouts,
        )
    )
