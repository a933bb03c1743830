"""The default transport: one .eml file per message in a folder, for local use and tests.
Each file holds exactly the bytes the SMTP transport would send (CRLF line ends)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from . import Commit, no_commit
from .message import OutgoingEmail, wire_bytes


class OutboxTransport:
    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def send(self, email: OutgoingEmail, commit: Commit = no_commit) -> str:
        data = wire_bytes(email)
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", email.message_id.strip("<>"))
        final = self.directory / f"{time.strftime('%Y%m%dT%H%M%S')}-{slug}.eml"
        tmp = self.directory / f".{final.name}.tmp"
        # Write then rename, so a reader never sees half a message.
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            commit()  # the rename below is the point of no return
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(final)
        return email.message_id
