"""Prints each message to standard output, exactly the bytes SMTP would send: handy while
writing templates."""

from __future__ import annotations

import sys

from . import Commit, no_commit
from .message import OutgoingEmail, wire_bytes


class ConsoleTransport:
    name = "console"

    def send(self, email: OutgoingEmail, commit: Commit = no_commit) -> str:
        commit()
        sys.stdout.flush()
        sys.stdout.buffer.write(wire_bytes(email) + b"\r\n")
        sys.stdout.buffer.flush()
        return email.message_id
