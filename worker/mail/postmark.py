"""Postmark: `POST /email` with the server token in `X-Postmark-Server-Token`.

Streams: transactional mail goes to the server's default transactional stream ("outbound"),
marketing mail to a broadcast stream ("broadcast"); both names are configurable because a
server may call its streams anything. Postmark answers every refusal as JSON
`{"ErrorCode": n, "Message": ...}`; the error code, not the HTTP status, says what it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formataddr

from . import Commit, no_commit
from .errors import MailConfigError, RecipientRejected
from .http import (
    DEFAULT_TIMEOUTS,
    ApiTransport,
    Timeouts,
    describe,
    json_body,
    raise_for_common_status,
)
from .message import OutgoingEmail, clean_header

DEFAULT_API_BASE = "https://api.postmarkapp.com"
# ErrorCode values that are about the recipient, not about us.
INACTIVE_RECIPIENT = 406
INVALID_REQUEST = 300
# 10 bad token, 400/401 sender signature missing or unconfirmed, 405 not allowed to send,
# 412/413 account pending or may not send: all fixed in Postmark's settings, then retried.
CONFIG_ERRORS = {10, 400, 401, 405, 412, 413}


@dataclass(frozen=True)
class PostmarkConfig:
    token: str
    api_base: str = DEFAULT_API_BASE
    transactional_stream: str = "outbound"
    marketing_stream: str = "broadcast"
    timeouts: Timeouts = DEFAULT_TIMEOUTS

    def __post_init__(self) -> None:
        if not self.token:
            raise MailConfigError("FAREWELL_POSTMARK_TOKEN is not set (a server API token)")


def request_body(email: OutgoingEmail, config: PostmarkConfig) -> dict[str, object]:
    """Our message as Postmark's send-email JSON. Pure."""
    stream = config.marketing_stream if email.stream == "marketing" else config.transactional_stream
    body: dict[str, object] = {
        "From": email.sender,
        "To": formataddr((clean_header(email.to_name), email.to)),
        "Subject": clean_header(email.subject),
        "HtmlBody": email.html,
        "TextBody": email.text,
        "MessageStream": stream,
        "Headers": [{"Name": k, "Value": clean_header(v)} for k, v in email.headers.items()],
        "Metadata": dict(email.tags),
    }
    if email.tags.get("step"):
        body["Tag"] = email.tags["step"]
    return body


class PostmarkTransport(ApiTransport[PostmarkConfig]):
    name = "postmark"

    def send(self, email: OutgoingEmail, commit: Commit = no_commit) -> str:
        cfg = self.config
        body = request_body(email, cfg)
        commit()  # the request below is the point of no return
        response = self.post(
            f"{cfg.api_base.rstrip('/')}/email",
            json=body,
            headers={"Accept": "application/json", "X-Postmark-Server-Token": cfg.token},
        )
        data = json_body(response)
        code = data.get("ErrorCode")
        message = str(data.get("Message", ""))
        if response.status_code == 200 and code == 0 and data.get("MessageID"):
            return str(data["MessageID"])
        detail = f"ErrorCode {code}: {message}" if code is not None else response.text[:200]
        if code == INACTIVE_RECIPIENT:
            raise RecipientRejected(
                describe(self.name, response, detail), reason="provider_suppressed"
            )
        # 300 is any invalid request; only an unusable 'To' is the member's address.
        if code == INVALID_REQUEST and "'To'" in message:
            raise RecipientRejected(describe(self.name, response, detail), reason="invalid_address")
        if code in CONFIG_ERRORS:
            raise MailConfigError(describe(self.name, response, detail))
        raise_for_common_status(self.name, response, detail)
        raise MailConfigError(describe(self.name, response, f"unexpected reply: {detail}"))
