"""`wire_bytes` (every transport's MIME writer; `to_mime` reads it back) carries whatever
names, subjects and header values it gets: read back with the email package, they are the
same text, never a decoded encoded-word, and a non-ASCII address is written SMTPUTF8-style."""

from __future__ import annotations

import email
import email.policy
import re

import pytest

from worker.mail.errors import MailConfigError, RecipientRejected
from worker.mail.message import OutgoingEmail, clean_header, to_mime, wire_bytes


def _parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def _outgoing(**overrides) -> OutgoingEmail:
    values = {
        "sender": "Ana at Example Club <ana@example.com>",
        "to": "jane.doe@example.com",
        "to_name": "Jane Doe",
        "subject": "Thank you, Jane — may we ask one thing?",
        "html": "<p>Olá, Jane — " + "x" * 1500 + "</p>",  # a line far past 998 octets
        "text": "Olá, Jane.\nThank you.\n",
        "message_id": "<memberpress-abc.feedback_request@members.example.com>",
        "stream": "marketing",
        "headers": {
            "List-Id": "Clube São Paulo farewell <farewell.members.example.com>",
            "List-Unsubscribe": "<https://members.example.com/unsubscribe/" + "t" * 120 + ">",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }
    values.update(overrides)
    return OutgoingEmail(**values)


HEADERS = (
    "From",
    "To",
    "Subject",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"to_name": "José Ñandú", "sender": '"Zoë, the team" <zoe@example.com>'},
        {"to_name": "Jane\r\nBcc: victim@example.com", "subject": "Hi\nBcc: x@example.com"},
        {"to_name": "Jane\x00\x1b[31m\x7fDoe", "subject": "Hi\x01\x0bthere"},
        {"to_name": "", "subject": "plain ascii", "headers": {}},
        {"text": "one\r\ntwo\rthree\u2028same line\n\n", "html": "<p>no final newline</p>"},
        # Longer than one encoded-word, with 4-byte characters across the chunk edges.
        {"subject": "Obrigado, João — podemos perguntar uma coisa? 👩‍💻🎉 " * 4},
    ],
)
def test_wire_bytes_reads_back_like_to_mime(overrides):
    outgoing = _outgoing(**overrides)
    fast = _parse(wire_bytes(outgoing))
    reference = to_mime(outgoing)
    # Every header to_mime writes (bar the date and the multipart boundary), so a header
    # added to to_mime one day fails here until wire_bytes writes it too.
    names = {k for k in reference if k not in ("Date", "Content-Type")}
    assert names == {k for k in fast if k not in ("Date", "Content-Type")}
    for name in names | set(HEADERS):
        assert str(fast[name] or "") == str(reference[name] or ""), name
    assert fast.get_content_type() == reference.get_content_type() == "multipart/alternative"
    assert fast["Bcc"] is None
    for kind in ("plain", "html"):
        assert (
            fast.get_body(preferencelist=(kind,)).get_content()
            == reference.get_body(preferencelist=(kind,)).get_content()
        )


def test_wire_bytes_is_smtp_safe():
    data = wire_bytes(_outgoing(subject="Até logo, João — " + "ç😀" * 60))
    lines = data.split(b"\r\n")
    assert b"\n" not in b"".join(lines)  # CRLF only
    assert max(len(line) for line in lines) <= 998
    encoded = [line for line in lines if b"=?utf-8?b?" in line]
    assert len(encoded) > 2 and max(len(line) for line in encoded) <= 76  # RFC 2047
    data.decode("ascii")  # 7-bit: no 8BITMIME needed


def test_a_non_ascii_address_is_written_as_it_is_smtputf8_style():
    outgoing = _outgoing(to="josé@exemplo.com.br", to_name="José")
    for data in (wire_bytes(outgoing), to_mime(outgoing).as_bytes()):
        # An SMTPUTF8 message is UTF-8 text; the email package reads it from a str.
        message = email.message_from_string(data.decode("utf-8"), policy=email.policy.default)
        [to] = message["To"].addresses
        assert (to.addr_spec, to.display_name) == ("josé@exemplo.com.br", "José")
    assert "josé@exemplo.com.br".encode() in wire_bytes(outgoing)


EVIL = "=?utf-8?q?evil=40attacker.test?="


@pytest.mark.parametrize(
    "name", [EVIL, f"Jane {EVIL}", f'"{EVIL}"', f"Zoë {EVIL}", "=?x", "Jane (=?utf-8?b?QQ==?=)"]
)
@pytest.mark.parametrize("write", [wire_bytes, lambda e: to_mime(e).as_bytes()])
def test_a_name_or_subject_that_looks_like_an_encoded_word_reads_back_as_written(name, write):
    outgoing = _outgoing(to_name=name, subject=f"Thank you, {name} — may we ask one thing?")
    message = _parse(write(outgoing))
    [to] = message["To"].addresses
    assert to.addr_spec == "jane.doe@example.com"
    assert to.display_name == name
    assert message["Subject"] == f"Thank you, {name} — may we ask one thing?"


@pytest.mark.parametrize(
    "to",
    [
        "victim@example.com\r\nReply-To: attacker@evil.test",
        "victim@example.com\nBcc: attacker@evil.test",
        "victim@example.com\rX: y",
        "vic\x00tim@example.com",
        "vic\x7ftim@example.com",
        "victim@example.com attacker@evil.test",
    ],
)
def test_an_address_with_a_line_break_or_control_character_is_refused(to):
    # Whatever let it through upstream, the writer never puts it into a message: the job
    # sees a permanent "invalid_address" rejection (suppressed, never retried).
    with pytest.raises(RecipientRejected) as caught:
        _outgoing(to=to)
    assert caught.value.reason == "invalid_address"
    assert "attacker" not in str(caught.value)  # the message is logged: no address in it


@pytest.mark.parametrize(
    "overrides",
    [
        {"message_id": "<a@example.com>\r\nBcc: attacker@evil.test"},
        {"headers": {"List-Unsubscribe": "<https://x.example/u>\r\nBcc: attacker@evil.test"}},
        {"headers": {"List-Id\r\nBcc": "attacker@evil.test"}},
        {"headers": {"List-Id": "club\x00"}},
    ],
)
def test_a_header_value_with_a_control_character_is_refused(overrides):
    with pytest.raises(ValueError, match="control character"):
        _outgoing(**overrides)


def test_a_sender_with_a_line_break_is_a_configuration_error():
    with pytest.raises(MailConfigError):
        _outgoing(sender="Club <club@example.com>\r\nBcc: attacker@evil.test")


def test_names_and_subjects_are_folded_to_one_clean_line():
    assert clean_header("Jane\r\nBcc: x\x00\x1b[1m\tDoe") == "Jane Bcc: x [1m Doe"


# --- every transport writes what SMTP sends -------------------------------------------------

_VARYING = re.compile(rb"^Date: [^\r\n]*|=_[0-9a-f]{32}", re.MULTILINE)


def _same_modulo_date_and_boundary(data: bytes) -> bytes:
    """The Date header (the time of writing) and the MIME boundary (random per message)
    are the only bytes that may differ between two writes of one message."""
    return _VARYING.sub(b"<varies>", data)


@pytest.mark.parametrize(
    "headers",
    [
        {},  # as _outgoing: an accented List-Id
        {"List-Unsubscribe": "<https://members.example.com/unsubscribe/" + "t" * 120 + ">"},
    ],
    ids=["list-id", "long-list-unsubscribe"],
)
def test_outbox_and_console_write_the_bytes_an_smtp_server_receives(
    smtp_server, tmp_path, capfdbinary, headers
):
    from worker.mail.console import ConsoleTransport
    from worker.mail.outbox import OutboxTransport
    from worker.mail.smtp import SmtpConfig, SmtpTransport

    message = _outgoing()
    message = OutgoingEmail(**{**message.__dict__, "headers": {**message.headers, **headers}})
    smtp = SmtpTransport(SmtpConfig.from_url(smtp_server.url))
    smtp.send(message)
    smtp.close()
    OutboxTransport(tmp_path).send(message)
    capfdbinary.readouterr()
    ConsoleTransport().send(message)
    printed = capfdbinary.readouterr().out

    [received] = smtp_server.sink.raw
    [eml] = tmp_path.glob("*.eml")
    expected = _same_modulo_date_and_boundary(received)
    assert _same_modulo_date_and_boundary(eml.read_bytes()) == expected
    assert _same_modulo_date_and_boundary(printed) == expected + b"\r\n"
    # The long List-Unsubscribe stays plain on one line, as SMTP sends it.
    assert b"List-Unsubscribe: <https://members.example.com/unsubscribe/" in expected
