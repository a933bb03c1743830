"""Prints each message to standard output: handy while writing templates."""

from __future__ import annotations

import sys

from . import Commit, no_commit
from .message import OutgoingEmail, to_mime


class ConsoleTransport:
    name = "console"

    def send(self, email: OutgoingEmail, commit: Commit = no_commit) -> str:
        commit()
        sys.stdout.write(to_mime(email).as_string() + "\n")
        sys.stdout.flush()
        return email.message_id
