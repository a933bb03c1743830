"""worker/addresses.py: which addresses a transport can carry at all. Pure."""

from __future__ import annotations

import pytest

from worker.addresses import unsendable_reason


@pytest.mark.parametrize("transport", ["outbox", "smtp", "postmark"])
def test_control_characters_are_never_sendable(transport):
    assert "control character" in unsendable_reason("a\x01b@example.com", transport)


def test_non_ascii_needs_a_transport_that_carries_it():
    assert "SMTPUTF8" in unsendable_reason("josé@example.com", "smtp")
    assert "SMTPUTF8" in unsendable_reason("ana@exemplo.com.br\u00e9", "sendgrid")
    assert unsendable_reason("josé@example.com", "outbox") is None


def test_plain_addresses_are_sendable_everywhere():
    for transport in ("outbox", "console", "smtp", "postmark", "mailgun", "sendgrid"):
        assert unsendable_reason("jane.doe+club@example.com", transport) is None
