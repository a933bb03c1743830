"""SendGrid: `POST /v3/mail/send` JSON with `Authorization: Bearer <key>`.

A success is `202` with an empty body; the message id comes back in the `X-Message-Id`
header. Refusals are JSON `{"errors": [{"message", "field", "help"}]}`; the `field` says
whether it was the recipient's address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
from .message import OutgoingEmail, clean_header, split_address

DEFAULT_API_BASE = "https://api.sendgrid.com"
_RECIPIENT_FIELD = re.compile(r"^personalizations\.\d+\.to\.\d+\.email$")


@dataclass(frozen=True)
class SendgridConfig:
    api_key: str
    api_base: str = DEFAULT_API_BASE
    timeouts: Timeouts = DEFAULT_TIMEOUTS

    def __post_init__(self) -> None:
        if not self.api_key:
            raise MailConfigError("FAREWELL_SENDGRID_API_KEY is not set")


def _address(name: str, email: str) -> dict[str, str]:
    name = clean_header(name)
    return {"email": email, "name": name} if name else {"email": email}


def request_body(email: OutgoingEmail) -> dict[str, object]:
    """Our message as SendGrid's v3 mail/send JSON. Pure. Plain text must come first."""
    sender_name, sender_addr = split_address(email.sender)
    body: dict[str, object] = {
        "personalizations": [{"to": [_address(email.to_name, email.to)]}],
        "from": _address(sender_name, sender_addr),
        "subject": clean_header(email.subject),
        "content": [
            {"type": "text/plain", "value": email.text},
            {"type": "text/html", "value": email.html},
        ],
        "custom_args": dict(email.tags),
    }
    if email.headers:
        body["headers"] = {k: clean_header(v) for k, v in email.headers.items()}
    if email.tags.get("step"):
        body["categories"] = ["farewell", email.tags["step"]]
    return body


class SendgridTransport(ApiTransport[SendgridConfig]):
    name = "sendgrid"

    def send(self, email: OutgoingEmail, commit: Commit = no_commit) -> str:
        cfg = self.config
        body = request_body(email)
        commit()  # the request below is the point of no return
        response = self.post(
            f"{cfg.api_base.rstrip('/')}/v3/mail/send",
            json=body,
            headers={"Authorization": f"Bearer {cfg.api_key}"},
        )
        if response.status_code in (200, 202):
            message_id = response.headers.get("X-Message-Id", "")
            if message_id:
                return message_id
            # Accepted but unnamed: still sent, so never report it as a failure to retry.
            return email.message_id
        errors = json_body(response).get("errors") or []
        errors = [e for e in errors if isinstance(e, dict)]
        detail = "; ".join(str(e.get("message", "")) for e in errors) or response.text[:200]
        if (
            response.status_code == 400
            and errors
            and all(_RECIPIENT_FIELD.match(str(e.get("field") or "")) for e in errors)
        ):
            raise RecipientRejected(describe(self.name, response, detail), reason="invalid_address")
        raise_for_common_status(self.name, response, detail)
        raise MailConfigError(describe(self.name, response, f"unexpected reply: {detail}"))
