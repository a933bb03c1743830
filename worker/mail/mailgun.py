"""Mailgun: `POST /v3/<domain>/messages` as multipart form, basic auth `api:<key>`.

Accounts live in one region: US (`api.mailgun.net`) or EU (`api.eu.mailgun.net`); a key
and domain from one region are unknown in the other (401/404), so the region must match.
Refusals are JSON `{"message": ...}` (or plain text for 401).
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

REGION_API_BASES = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}


@dataclass(frozen=True)
class MailgunConfig:
    api_key: str
    domain: str
    region: str = "us"
    api_base: str = ""  # empty: the region's base
    timeouts: Timeouts = DEFAULT_TIMEOUTS

    def __post_init__(self) -> None:
        if not self.api_key:
            raise MailConfigError("FAREWELL_MAILGUN_API_KEY is not set")
        if not self.domain:
            raise MailConfigError("FAREWELL_MAILGUN_DOMAIN is not set (your sending domain)")
        if self.region.lower() not in REGION_API_BASES:
            raise MailConfigError(f"FAREWELL_MAILGUN_REGION must be us or eu, not {self.region!r}")

    @property
    def base(self) -> str:
        return (self.api_base or REGION_API_BASES[self.region.lower()]).rstrip("/")


def form_fields(email: OutgoingEmail) -> list[tuple[str, str]]:
    """Our message as Mailgun's form fields, in order. Pure."""
    fields = [
        ("from", email.sender),
        ("to", formataddr((clean_header(email.to_name), email.to))),
        ("subject", clean_header(email.subject)),
        ("text", email.text),
        ("html", email.html),
    ]
    fields += [(f"h:{name}", clean_header(value)) for name, value in email.headers.items()]
    if email.tags.get("step"):
        fields.append(("o:tag", email.tags["step"]))
    fields += [(f"v:{key}", value) for key, value in email.tags.items()]
    return fields


def _is_invalid_recipient(message: str) -> bool:
    lowered = message.lower()
    return "'to'" in lowered and "valid" in lowered


class MailgunTransport(ApiTransport[MailgunConfig]):
    name = "mailgun"

    def send(self, email: OutgoingEmail, commit: Commit = no_commit) -> str:
        cfg = self.config
        # (None, value): plain form fields, sent as multipart/form-data as documented.
        files = [(name, (None, value)) for name, value in form_fields(email)]
        commit()  # the request below is the point of no return
        response = self.post(
            f"{cfg.base}/v3/{cfg.domain}/messages",
            files=files,
            auth=("api", cfg.api_key),
        )
        data = json_body(response)
        message = str(data.get("message", "")) or response.text[:200]
        if response.status_code == 200 and data.get("id"):
            return str(data["id"]).strip("<>")
        if response.status_code == 400 and _is_invalid_recipient(message):
            raise RecipientRejected(
                describe(self.name, response, message), reason="invalid_address"
            )
        raise_for_common_status(self.name, response, message)
        raise MailConfigError(describe(self.name, response, f"unexpected reply: {message}"))
