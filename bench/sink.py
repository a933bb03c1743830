"""An aiosmtpd server, in a process of its own, that counts what it receives.

It keeps one counter per recipient (to tell a lost email from a duplicated one) and the
arrival times of the first and last message. The parent talks to it over a pipe.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from devstack.redis_server import free_port


@dataclass
class SinkStats:
    total: int = 0
    per_recipient: Counter[str] = field(default_factory=Counter)
    first_at: float | None = None  # time.time() of the first message
    last_at: float | None = None
    arrivals: array = field(default_factory=lambda: array("d"))  # time.time() per message

    def duplicated(self) -> list[str]:
        return [rcpt for rcpt, n in self.per_recipient.items() if n > 1]


class _Handler:
    def __init__(self) -> None:
        self.stats = SinkStats()

    async def handle_DATA(self, server, session, envelope) -> str:
        now = time.time()
        stats = self.stats
        stats.total += 1
        for rcpt in envelope.rcpt_tos:
            stats.per_recipient[rcpt.lower()] += 1
        if stats.first_at is None:
            stats.first_at = now
        stats.last_at = now
        stats.arrivals.append(now)
        return "250 Message accepted for delivery"


def _serve(port: int, conn: Connection) -> None:
    from aiosmtpd.controller import Controller

    handler = _Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    conn.send("ready")
    try:
        while True:
            command = conn.recv()
            if command == "stats":
                conn.send(handler.stats)
            elif command == "count":
                conn.send(handler.stats.total)
            elif command == "reset":
                handler.stats = SinkStats()
                conn.send("ok")
            elif command == "stop":
                break
    finally:
        controller.stop()
        conn.send("stopped")


class Sink:
    """The SMTP sink process. `url` is what FAREWELL_SMTP_URL should say."""

    def __init__(self) -> None:
        self.port = free_port()
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(self.port, child), name="smtp-sink")

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> Sink:
        self.process.start()
        if not self._conn.poll(30) or self._conn.recv() != "ready":
            raise RuntimeError("the SMTP sink did not start")
        return self

    def _ask(self, command: str):
        self._conn.send(command)
        return self._conn.recv()

    def stats(self) -> SinkStats:
        return self._ask("stats")

    def count(self) -> int:
        return self._ask("count")

    def reset(self) -> None:
        self._ask("reset")

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self._ask("stop")
            except (BrokenPipeError, EOFError):
                pass
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
