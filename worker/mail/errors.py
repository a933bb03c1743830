"""One small family of delivery errors, the same for every transport.

Jobs decide retry or suppression from the class alone, never from a transport's details.
"""

from __future__ import annotations


class MailError(Exception):
    """Base of every delivery failure."""


class TransientMailError(MailError):
    """Try again later: timeouts, connection errors, SMTP 4xx, HTTP 429/5xx.

    `sent_nothing` is False when the failure came after the server may have accepted the
    message (a lost reply to DATA): then the send claim is kept and nothing is retried.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, sent_nothing: bool = True
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.sent_nothing = sent_nothing


class RecipientRejected(MailError):
    """Permanent for this address (unknown mailbox, provider suppression): never retry it.

    `reason` becomes the suppression reason: "bounced" (the receiving server refused the
    mailbox), "invalid_address" (malformed) or "provider_suppressed" (the provider already
    refuses this address after an earlier bounce or complaint).
    """

    def __init__(self, message: str, *, reason: str = "bounced") -> None:
        super().__init__(message)
        self.reason = reason


class MailConfigError(MailError):
    """Permanent for our configuration (bad credentials, unverified sender): fix, then retry."""
