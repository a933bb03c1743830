"""SMTP transport: one reused connection per worker process, STARTTLS or SSL, timeouts.

`FAREWELL_SMTP_URL` looks like `smtp://user:pass@host:587?starttls=1` or
`smtps://user:pass@host:465`.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from . import Commit, no_commit
from .errors import MailConfigError, RecipientRejected, TransientMailError
from .message import OutgoingEmail, split_address, wire_bytes


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    use_ssl: bool
    starttls: bool
    timeout: float

    @classmethod
    def from_url(cls, url: str, timeout: float = 10.0) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise MailConfigError(
                f"FAREWELL_SMTP_URL must start with smtp:// or smtps://, "
                f"not {parts.scheme or 'nothing'}://"
            )
        if not parts.hostname:
            raise MailConfigError("FAREWELL_SMTP_URL has no host")
        query = parse_qs(parts.query)
        use_ssl = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if use_ssl else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_ssl=use_ssl,
            starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
            timeout=float(query.get("timeout", [timeout])[0]),
        )


def _is_transient(code: int) -> bool:
    return 400 <= code < 500


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


class SmtpTransport:
    name = "smtp"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        context = ssl.create_default_context()
        try:
            if cfg.use_ssl:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=context
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientMailError(
                f"cannot connect to SMTP {cfg.host}:{cfg.port}: {exc}"
            ) from exc
        try:
            if cfg.starttls and not cfg.use_ssl:
                conn.starttls(context=context)
            if cfg.username:
                conn.login(cfg.username, cfg.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            conn.close()
            raise MailConfigError(f"SMTP login refused: {exc.smtp_code}") from exc
        except smtplib.SMTPNotSupportedError as exc:
            conn.close()
            raise MailConfigError(f"SMTP server does not support that: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            conn.close()
            raise TransientMailError(f"SMTP session setup with {cfg.host} failed: {exc}") from exc
        return conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._conn = None

    def send(self, email: OutgoingEmail, commit: Commit = no_commit) -> str:
        """Send one message. `commit` is called once the envelope is accepted and just
        before DATA: the point after which the message may have been delivered."""
        sender = split_address(email.sender)[1]
        data = wire_bytes(email)  # CRLF line ends, as SMTP wants
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._connect()
            try:
                self._envelope(self._conn, sender, email.to)
                break
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                # Most often a reused connection the server closed while idle: reconnect once.
                self._conn = None
                if attempt == 2:
                    raise TransientMailError(f"SMTP connection lost: {exc}") from exc
        try:
            commit()
        except BaseException:
            self._reset()
            raise
        try:
            code, reply = _data(self._conn, data)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The reply to DATA is what was lost: the server may have accepted the message.
            self._conn = None
            raise TransientMailError(
                f"SMTP connection lost during DATA: {exc}", sent_nothing=False
            ) from exc
        except smtplib.SMTPDataError as exc:
            code, reply = exc.smtp_code, exc.smtp_error
        if code != 250:
            self._reset()
            text = f"{code} {_text(reply)}"
            if _is_transient(code):
                raise TransientMailError(f"message deferred: {text}")
            raise RecipientRejected(f"message refused: {text}")
        return email.message_id

    def _envelope(self, conn: smtplib.SMTP, sender: str, recipient: str) -> None:
        """MAIL FROM and RCPT TO: failures here are known to have sent nothing."""
        conn.ehlo_or_helo_if_needed()
        code, reply = conn.mail(sender)
        if code != 250:
            self._reset()
            if _is_transient(code):
                raise TransientMailError(f"sender deferred: {code} {_text(reply)}")
            raise MailConfigError(f"sender refused: {code} {_text(reply)}")
        code, reply = conn.rcpt(recipient)
        if code not in (250, 251):
            self._reset()
            if _is_transient(code):
                raise TransientMailError(f"recipient deferred: {code} {_text(reply)}")
            raise RecipientRejected(f"recipient refused: {code} {_text(reply)}")

    def _reset(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rset()
        except (OSError, smtplib.SMTPException):
            self._conn = None


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _data(conn: smtplib.SMTP, data: bytes) -> tuple[int, bytes]:
    """SMTP.data for a message whose lines already end in CRLF, dot-stuffing only when a
    line starts with a dot: smtplib runs its regex over every message, and ours (base64
    parts) never have one."""
    conn.putcmd("data")
    code, reply = conn.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    if data.startswith(b".") or b"\n." in data:
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    conn.send(data + b".\r\n")
    return conn.getreply()
