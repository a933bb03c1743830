"""The benchmark's pure parts: what it sends is a real MemberPress cancellation per distinct
member, and how it summarizes. (The benchmark itself is run by hand, never timed here.)"""

from __future__ import annotations

from bench.__main__ import _by_role, percentiles
from bench.load import MARK, body_template, member_email, request_bytes
from hooks.sources import memberpress
from worker.events import EventKind


def test_each_bench_webhook_is_a_cancellation_of_a_distinct_member():
    template = body_template()
    events = [memberpress.parse(template.replace(MARK, str(i)).encode()) for i in (1, 2, 10)]
    assert [e.kind for e in events] == [EventKind.CANCELLED] * 3
    assert [e.member.email for e in events] == [member_email(i) for i in (1, 2, 10)]
    assert len({e.event_id for e in events}) == 3


def test_requests_are_framed_like_wordpress_sends_them():
    raw = request_bytes("127.0.0.1:5000", "/hooks/memberpress", "key", '{"a": "é"}')
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hooks/memberpress HTTP/1.0"
    assert b"MEMBERPRESS-WEBHOOK-KEY: key" in lines
    assert f"Content-Length: {len(body)}".encode() in lines
    keepalive = request_bytes("h", "/p", "k", "{}", keepalive=True)
    assert keepalive.startswith(b"POST /p HTTP/1.1\r\n")


def test_percentiles_in_milliseconds():
    summary = percentiles([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert summary["p50"] == 51 and summary["p99"] == 100 and summary["max"] == 100
    assert percentiles([]) == {}


def test_processes_are_named_by_role():
    peaks = {
        "web": 24,
        "web child 1": 44,
        "redis": 141,
        "redis child 1": 74,
        "redis child 2": 102,
        "worker": 44,
        "worker child 1": 31,
    }
    assert _by_role(peaks, max) == {
        "redis": 141,
        "redis AOF-rewrite forks": 102,
        "web master": 24,
        "web worker 1": 44,
        "worker": 44,
        "worker scheduler": 31,
    }
