"""Slow clients against the default deployment (`make run`: gunicorn from the Procfile with
gunicorn.conf.py): stalled uploads do not stop intake, and each gets a 408 in the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from devstack.redis_server import free_port
from hooks.gunicorn_worker import expects_continue, request_complete, without_expect
from tests import payloads
from tests.faultkit import wait_for
from worker.settings import DEFAULT_MAX_BODY_BYTES

ROOT = Path(__file__).resolve().parent.parent
# More than the default deployment's threads (2 processes x 4 threads).
STALLED = 24


def _stall(port: int, key: str) -> socket.socket:
    """A client that announces a 100,000-byte body, sends one byte and waits."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(
        f"POST /hooks/memberpress?key={key} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".encode()
    )
    return sock


@pytest.fixture
def stack(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAREWELL_", "REDIS_URL"))}
    env.pop("WEB_CONCURRENCY", None)
    env.pop("WEB_THREADS", None)
    # The key MemberPress shows, copied into Farewell (make run generates none).
    key = "k7Qw2ZpL9x"
    env.update(
        PORT=str(port),
        FAREWELL_VAR_DIR=str(tmp_path),
        WEB_READ_TIMEOUT="4",
        FAREWELL_MEMBERPRESS_KEY=key,
    )
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(
            lambda: "Press Ctrl-C" in (tmp_path / "run.log").read_text(), 60, "the start-up banner"
        )
        yield port, key, tmp_path / "run.log"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow
def test_stalled_uploads_do_not_stop_webhooks_or_healthz(stack):
    port, key, log = stack
    stalled = [_stall(port, key) for _ in range(STALLED)]
    try:
        # Every thread would be blocked on one of those bodies by now if the worker gave
        # a connection to a thread before its request had arrived.
        for n in range(3):
            health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
            assert health.status_code == 200
            webhook = requests.post(
                f"http://127.0.0.1:{port}/hooks/memberpress?key={key}",
                data=payloads.body(
                    payloads.memberpress(member_id=100 + n, subscription_id=f"9{n}")
                ),
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            assert webhook.status_code == 202, webhook.text
        # A client that waits for "100 Continue" before its body gets it, then its answer.
        body = payloads.body(payloads.memberpress(member_id=200, subscription_id="200"))
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(
                f"POST /hooks/memberpress?key={key} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nExpect: 100-continue\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
            )
            assert client.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n")
            client.sendall(body)
            assert client.recv(4096).startswith(b"HTTP/1.1 202 ")  # one 100, then the answer
        # Past WEB_READ_TIMEOUT, a stalled upload is answered 408 and closed.
        for sock in stalled:
            reply = sock.recv(1024)
            assert reply.startswith(b"HTTP/1.1 408 "), reply
            assert sock.recv(1024) == b""  # closed
    finally:
        for sock in stalled:
            sock.close()
    assert "its request did not arrive within 4.0 s" in log.read_text()


@pytest.mark.slow
def test_chunked_bodies_get_the_same_size_limit_through_gunicorn(stack):
    port, key, _log = stack
    url = f"http://127.0.0.1:{port}/hooks/memberpress?key={key}"
    limit = DEFAULT_MAX_BODY_BYTES

    def chunked(member_id: int, size: int):
        body = payloads.body(payloads.memberpress(member_id=member_id, subscription_id="31"))
        body += b" " * (size - len(body))
        # A generator makes requests send `Transfer-Encoding: chunked`, 8 KB a chunk.
        return (body[i : i + 8192] for i in range(0, len(body), 8192))

    headers = {"Content-Type": "application/json"}
    exact = requests.post(url, data=chunked(301, limit), headers=headers, timeout=60)
    assert exact.status_code == 202, exact.text
    for size in (limit + 16 * 1024, limit + 1_000_000):
        over = requests.post(url, data=chunked(302, size), headers=headers, timeout=60)
        assert over.status_code == 413, (size, over.text)
        assert f"larger than {limit} bytes" in over.json()["error"]


# --- the pure parts ------------------------------------------------------------------------

HEAD = b"POST /hooks/x HTTP/1.1\r\nHost: a\r\n"


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", True),
        (b"GET /healthz HTTP/1.1\r\nHost: a\r\n", False),
        (HEAD + b"Content-Length: 5\r\n\r\nabcd", False),
        (HEAD + b"Content-Length: 5\r\n\r\nabcde", True),
        (HEAD + b"content-length:5\r\nX: y\r\n\r\nabcde", True),
        (HEAD + b"Content-Length: 0\r\n\r\n", True),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", False),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", True),
        # A header value that merely mentions content-length is not the header.
        (HEAD + b"X-Note: content-length: 0\r\nContent-Length: 3\r\n\r\n", False),
    ],
)
def test_request_complete(data, complete):
    assert request_complete(data) is complete


def test_expects_continue_once_the_headers_are_in():
    assert expects_continue(HEAD + b"Expect: 100-continue\r\nContent-Length: 9\r\n\r\n")
    assert not expects_continue(HEAD + b"Expect: 100-continue\r\n")
    assert not expects_continue(HEAD + b"Content-Length: 9\r\n\r\n")
    sent = HEAD + b"Expect: 100-Continue\r\nContent-Length: 2\r\n\r\n{}"
    assert without_expect(sent) == HEAD + b"Content-Length: 2\r\n\r\n{}"
