"""Never lose, never double-send: real processes, real signals, counted at a real SMTP sink.

Each test starts redis-server, the Procfile's `web` (gunicorn) and `worker` processes and
an aiosmtpd sink, streams MemberPress cancellations at them (one member each), breaks
something with a real signal, and then checks, per member, that every webhook that got a
2xx produced exactly one email: 0 lost, 0 duplicates. The figures are printed (`-s`) and
appended to $FAREWELL_FAULT_REPORT when set.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.faultkit import Cluster, Sender, SmtpSink, report, settle, tally, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _assert_exactly_once(name: str, deliveries, sink) -> None:
    result = tally(deliveries, sink.handler)
    report(result.line(name))
    assert result.accepted == result.sent, "the sender should get an answer for every webhook"
    assert result.lost == 0, result
    assert result.duplicates == 0, result


def _run_in_background(target, *args):
    box: dict = {}

    def run() -> None:
        box["result"] = target(*args)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_a_burst_on_two_web_and_three_worker_processes_mails_each_member_once(tmp_path):
    with SmtpSink() as sink:
        cluster = Cluster(tmp_path, sink.url).start(webs=2, workers=3)
        try:
            sender = Sender(cluster.url)
            members = list(range(200))
            # A cancellation wave: every member once, a quarter of them delivered twice
            # (plugins resend), spread over both web processes.
            deliveries = sender.stream(members + members[::4], rate=150, threads=6)
            statuses = {d.status for d in deliveries}
            assert statuses <= {200, 202}, statuses
            assert sum(d.body.get("status") == "duplicate" for d in deliveries) >= 50
            settle(sink.handler, 200, timeout=90, cluster=cluster)
            _assert_exactly_once("burst 2 web + 3 workers", deliveries[:200], sink)
        finally:
            cluster.stop()


def test_redis_killed_and_restarted_while_webhooks_stream_in_loses_nothing(tmp_path):
    with SmtpSink() as sink:
        cluster = Cluster(tmp_path, sink.url).start(webs=2, workers=2)
        try:
            sender = Sender(cluster.url)
            thread, box = _run_in_background(sender.stream, range(240), 40)
            time.sleep(1.5)
            cluster.redis.kill()  # SIGKILL: no shutdown, no final AOF flush
            time.sleep(2.0)  # webhooks keep coming: they go to the spool
            cluster.restart_redis()  # from its AOF
            thread.join(60)
            deliveries = box["result"]
            spooled = sum(bool(d.body.get("spooled")) for d in deliveries)
            report(f"[redis SIGKILL] {spooled} webhooks answered from the spool")
            assert spooled > 0, "the kill should have happened while webhooks streamed in"
            settle(sink.handler, 240, timeout=120, cluster=cluster)
            _assert_exactly_once("redis SIGKILL + restart", deliveries, sink)
            wait_for(lambda: not list((tmp_path / "spool").glob("*.jsonl")), 10, "empty spool")
        finally:
            cluster.stop()


def test_workers_killed_mid_job_lose_and_duplicate_nothing(tmp_path):
    # A slow RCPT keeps each send in flight ~80 ms (before its point of no return), so
    # SIGKILLs land inside jobs holding a send claim.
    with SmtpSink(rcpt_delay=0.08) as sink:
        cluster = Cluster(tmp_path, sink.url).start(webs=1, workers=3)
        try:
            sender = Sender(cluster.url)
            deliveries = sender.stream(range(150), rate=100)
            kills = 0
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and sink.handler.count() < 150:
                time.sleep(0.7)
                cluster.replace_worker(kills % len(cluster.workers))
                kills += 1
            report(f"[worker SIGKILL] {kills} workers SIGKILLed mid-run")
            assert kills >= 3
            settle(sink.handler, 150, timeout=60, cluster=cluster)
            _assert_exactly_once("worker SIGKILL mid-job", deliveries, sink)
        finally:
            cluster.stop()
