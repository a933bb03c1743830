"""Fixtures for the survey, the insights admin and notifications: links taken from real
generated emails, and a real local HTTP server standing in for a Slack webhook."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ADMIN_PASSWORD = "owner-pass-7f3e"
LINK = re.compile(r"(https?://\S+/feedback/[A-Za-z0-9_.\-]+)\?reason=(\w+)")


def feedback_links(message) -> dict[str, str]:
    """reason id -> full survey link, from an email's text part."""
    text = message.get_body(preferencelist=("plain",)).get_content()
    return {reason: f"{url}?reason={reason}" for url, reason in LINK.findall(text)}


@pytest.fixture
def survey_links(outbox):
    """The survey links in the newest email sent to `address`, by reason id."""

    def links(address: str = "jane.doe@example.com") -> dict[str, str]:
        mine = [m for m in outbox() if m["To"].addresses[0].addr_spec == address]
        assert mine, f"no email was sent to {address}"
        return feedback_links(mine[-1])

    return links


@dataclass
class NotifyServer:
    """A local HTTP server that records JSON POSTs and answers with queued statuses."""

    url: str
    received: list[dict] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200


@pytest.fixture
def notify_server() -> Iterator[NotifyServer]:
    state = NotifyServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = state.statuses.pop(0) if state.statuses else 200
            if status == 200:
                state.received.append(
                    {"json": json.loads(body), "content_type": self.headers["Content-Type"]}
                )
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"error")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)
