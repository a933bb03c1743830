"""The web process's gunicorn worker: gthread, but a request reaches a thread only once all
of it has arrived.

Stock gthread hands a connection to a thread as soon as it is readable, and the thread then
blocks reading headers and body. A handful of clients that send `Content-Length: 100000`
and one byte held every thread, so no webhook and no `/healthz` got an answer until they
gave up. Here the worker's event loop reads each request (headers, then the body its
Content-Length announces) into a buffer without blocking; a connection that has not
delivered its whole request within `WEB_READ_TIMEOUT` seconds (default 10) gets a 408 and is
closed. Slow clients cost a socket and a buffer, never a thread, up to gunicorn's
`worker_connections` per process.

This leans on gthread's internals (gunicorn pinned in requirements.txt); every assumption
is named where it is used, and tests/test_slow_clients.py runs the real thing.
"""

from __future__ import annotations

import os
import re
import selectors
import time
from collections import deque
from functools import partial

from gunicorn import http
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import ThreadWorker

READ_TIMEOUT = float(os.environ.get("WEB_READ_TIMEOUT", "10"))
# Past this much buffered, the request goes to a thread as it is: the app answers 413 for a
# body over FAREWELL_MAX_BODY_BYTES from its headers alone (gunicorn's drain is bounded).
MAX_BUFFER = 2 * 1024 * 1024
# All connections of one process together: past this, a request goes to a thread as it is
# (stock gthread), so many large slow uploads cannot take the process's memory either.
MAX_BUFFERED = 64 * 1024 * 1024
_HEADERS_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r\n", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:[^\r\n]*chunked", re.I)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue[ \t]*\r\n", re.I)
_TIMEOUT_REPLY = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def request_complete(data: bytes) -> bool:
    """Whether `data` holds a whole HTTP/1.x request: its headers, and the body they
    announce (Content-Length, or a chunked body up to its last chunk)."""
    end = data.find(_HEADERS_END)
    if end < 0:
        return False
    head = b"\r\n" + data[: end + 2]
    body = len(data) - end - len(_HEADERS_END)
    if _CHUNKED.search(head):
        return data.endswith(b"0\r\n\r\n") and body >= 5
    length = _CONTENT_LENGTH.search(head)
    return length is None or body >= int(length.group(1))


def expects_continue(data: bytes) -> bool:
    """Headers complete, with `Expect: 100-continue`: the client waits for our go-ahead."""
    end = data.find(_HEADERS_END)
    return end >= 0 and _EXPECT_CONTINUE.search(b"\r\n" + data[: end + 2]) is not None


def without_expect(data: bytes) -> bytes:
    """The request without its `Expect: 100-continue` line, once we have sent the 100
    ourselves (so gunicorn does not send a second one)."""
    end = data.find(_HEADERS_END) + 2
    return _EXPECT_CONTINUE.sub(b"\r\n", data[:end], count=1) + data[end:]


class _Receiving:
    """A connection whose request is still arriving."""

    __slots__ = ("buffer", "conn", "continued", "deadline", "done")

    def __init__(self, conn, buffer: bytes) -> None:
        self.conn = conn
        self.buffer = bytearray(buffer)
        self.deadline = time.monotonic() + READ_TIMEOUT
        self.continued = False
        self.done = False


class BufferingWorker(ThreadWorker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.receiving: deque[_Receiving] = deque()  # by deadline, oldest first
        self.buffered = 0  # bytes held in `receiving` buffers

    def enqueue_req(self, conn) -> None:
        # gthread calls this for a new connection (accept), a kept-alive one that became
        # readable, and one with pipelined bytes already read ahead (finish_request).
        if getattr(conn, "farewell_buffered", False) or not self._bufferable(conn):
            conn.farewell_buffered = False
            super().enqueue_req(conn)
            return
        ahead = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        entry = _Receiving(conn, ahead)
        if request_complete(bytes(entry.buffer)):
            self._hand_over(entry)
            return
        conn.sock.setblocking(False)
        self.buffered += len(entry.buffer)
        self.receiving.append(entry)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, entry))

    def _bufferable(self, conn) -> bool:
        # TLS and HTTP/2 go the stock way (TConn.init wraps or sniffs the socket itself).
        if conn.is_http2 or self.cfg.is_ssl:
            return False
        return conn.parser is not None or not negotiation.prior_knowledge_allowed(
            self.cfg, conn.client
        )

    def _readable(self, entry: _Receiving, sock) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(entry)
            return
        entry.buffer += data
        self.buffered += len(data)
        if (
            request_complete(bytes(entry.buffer))
            or len(entry.buffer) > MAX_BUFFER
            or self.buffered > MAX_BUFFERED
        ):
            self._stop_receiving(entry)
            self._hand_over(entry)
        elif not entry.continued and expects_continue(bytes(entry.buffer)):
            # The client sends its body only after this (curl waits a second without it).
            entry.continued = True
            self._send_quietly(sock, b"HTTP/1.1 100 Continue\r\n\r\n")

    def _hand_over(self, entry: _Receiving) -> None:
        conn = entry.conn
        if conn.parser is None:
            # What TConn.init would build for plain HTTP/1.x: it skips a parser already set.
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        data = bytes(entry.buffer)
        conn.parser.unreader.unread(without_expect(data) if entry.continued else data)
        entry.buffer = bytearray()  # the entry may wait in `receiving` a while yet
        conn.data_ready = True  # no second wait for data in the thread
        conn.farewell_buffered = True
        self.enqueue_req(conn)

    def _stop_receiving(self, entry: _Receiving) -> None:
        entry.done = True  # removed from the deque lazily, in murder_pending
        self.buffered -= len(entry.buffer)
        try:
            self.poller.unregister(entry.conn.sock)
        except (OSError, KeyError, ValueError):
            pass

    def _drop(self, entry: _Receiving, reply: bytes = b"") -> None:
        self._stop_receiving(entry)
        if reply:
            self._send_quietly(entry.conn.sock, reply)
        self.nr_conns -= 1
        entry.conn.close()

    @staticmethod
    def _send_quietly(sock, data: bytes) -> None:
        try:
            sock.send(data)
        except OSError:
            pass

    def murder_pending(self) -> None:
        # Called by gthread's event loop about once a second, and while stopping.
        super().murder_pending()
        now = time.monotonic()
        while self.receiving and (self.receiving[0].done or self.receiving[0].deadline <= now):
            entry = self.receiving.popleft()
            if entry.done:
                continue
            started = bool(entry.buffer)
            if started:
                self.log.warning(
                    "closed a connection from %s: its request did not arrive within %s s",
                    entry.conn.client[0] if entry.conn.client else "?",
                    READ_TIMEOUT,
                )
            self._drop(entry, _TIMEOUT_REPLY if started else b"")
