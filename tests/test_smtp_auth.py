"""SMTP AUTH against a real aiosmtpd server: right credentials deliver, wrong ones are a
configuration error (never retried as if transient)."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from devstack.redis_server import free_port
from tests.conftest import SmtpSink
from worker.mail.errors import MailConfigError
from worker.mail.message import OutgoingEmail
from worker.mail.smtp import SmtpConfig, SmtpTransport

USER, PASSWORD = "farewell@example.com", "s3cret/with@chars"
# Plain AUTH on loopback: TLS is the server's business, not what these tests check.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def auth_smtp():
    sink = SmtpSink()
    port = free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
        auth_required=True,
        auth_exclude_mechanism=["LOGIN"],
    )
    controller.start()
    yield port, sink
    controller.stop()


EMAIL = OutgoingEmail(
    sender="Ana <ana@example.com>",
    to="jane@example.com",
    subject="Hello",
    html="<p>Hi</p>",
    text="Hi",
    message_id="<t1@example.com>",
)


def test_login_with_url_encoded_credentials_delivers(auth_smtp):
    port, sink = auth_smtp
    url = f"smtp://farewell%40example.com:s3cret%2Fwith%40chars@127.0.0.1:{port}"
    transport = SmtpTransport(SmtpConfig.from_url(url, timeout=5))
    assert transport.send(EMAIL) == "<t1@example.com>"
    transport.close()
    assert [m["Subject"] for m in sink.messages] == ["Hello"]


def test_wrong_password_is_a_configuration_error(auth_smtp):
    port, sink = auth_smtp
    url = f"smtp://farewell%40example.com:wrong@127.0.0.1:{port}"
    transport = SmtpTransport(SmtpConfig.from_url(url, timeout=5))
    with pytest.raises(MailConfigError, match="login refused"):
        transport.send(EMAIL)
    assert sink.messages == []
