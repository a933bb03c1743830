"""Issue 18's stories against `make run`'s real processes (embedded redis-server, gunicorn,
the RQ worker with its scheduler), over HTTP, with bodies and headers shaped as
MemberPress, WooCommerce Subscriptions and PMPro's Zapier add-on send them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests
from rq import Queue

from devstack.redis_server import free_port
from tests import payloads, plugin_payloads, source_payloads
from tests.conftest import parts, read_eml
from tests.faultkit import wait_for
from tests.fixtures_sources import woocommerce_headers
from worker import rq_seam

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
WC_TYPED = "p%41ss&amp;word <b>x</b>"  # as typed in WooCommerce; signed as "pss&word x"
PMPRO_KEY = "pmpro-stack-key-31x9"
mp = plugin_payloads


MEMBERPRESS_SHOWN_KEY = "k7Qw2ZpL9x"  # 10 characters, as MemberPress makes them


@pytest.fixture
def stack(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAREWELL_", "REDIS_URL"))}
    env.update(
        PORT=str(port),
        FAREWELL_VAR_DIR=str(tmp_path),
        WEB_CONCURRENCY="2",
        FAREWELL_WOOCOMMERCE_SECRET=WC_TYPED,
        FAREWELL_PMPRO_KEY=PMPRO_KEY,
        # The key MemberPress generates and shows, copied into Farewell by the owner.
        FAREWELL_MEMBERPRESS_KEY=MEMBERPRESS_SHOWN_KEY,
    )
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: "Press Ctrl-C" in (tmp_path / "run.log").read_text(), 90, "the banner")
        banner = (tmp_path / "run.log").read_text()
        key = MEMBERPRESS_SHOWN_KEY
        redis_port = int(re.search(r"Redis: redis://127\.0\.0\.1:(\d+)", banner).group(1))
        client = redis.Redis(port=redis_port, decode_responses=True)
        yield Stack(f"http://127.0.0.1:{port}", key, client, tmp_path / "outbox")
        client.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


class Stack:
    def __init__(self, url: str, key: str, redis_client: redis.Redis, outbox: Path) -> None:
        self.url, self.key, self.redis, self.outbox = url, key, redis_client, outbox

    def memberpress(self, payload) -> requests.Response:
        return requests.post(
            f"{self.url}/hooks/memberpress",
            data=mp.body(payload),
            headers={
                "Content-Type": "application/json",
                "User-Agent": mp.MP_USER_AGENT,
                "MEMBERPRESS-WEBHOOK-KEY": self.key,
                "Referer": f"{self.url}/hooks/memberpress",
            },
            timeout=10,
        )

    def woocommerce(self, data: bytes, topic: str = "subscription.updated") -> requests.Response:
        headers = woocommerce_headers(data, topic, secret="pss&word x")
        return requests.post(
            f"{self.url}/hooks/woocommerce", data=data, headers=headers, timeout=10
        )

    def pmpro(self, payload) -> requests.Response:
        url = f"{self.url}/hooks/pmpro?key={PMPRO_KEY}"
        headers = {"Content-Type": ": application/json", "Referer": url}
        return requests.post(url, data=mp.body(payload), headers=headers, timeout=10)

    def handled(self) -> bool:
        return self.redis.zcard("farewell:pending") == 0

    def sequence(self, sequence_id: str) -> dict[str, str]:
        return self.redis.hgetall(f"farewell:sequence:{sequence_id}")

    def win_back_planned(self, sequence_id: str) -> bool:
        """The step job waits in RQ's scheduled registry and was not cancelled."""
        job_id = f"step-{sequence_id}-winback"
        scheduled = job_id in Queue("farewell", connection=self.redis).scheduled_job_registry
        return scheduled and self.redis.hget(rq_seam.job_key(job_id), "status") != "canceled"

    def emails_to(self, address: str) -> list[str]:
        """The text part of each email to `address` (the .eml holds the SMTP bytes, base64
        parts included: read as a mail client would)."""
        messages = [read_eml(p) for p in self.outbox.glob("*.eml")]
        return [parts(m)[0] for m in messages if m["To"].addresses[0].addr_spec == address]


def _settled(stack: Stack, what: str) -> None:
    wait_for(stack.handled, 30, what)


def test_the_stories_of_issue_18_on_the_real_stack(stack):
    # Bob: pause, resume, cancel (follow-ups start), resume again (byte-identical to the
    # first resume): no win-back stays planned.
    for name, status in [
        ("subscription-paused", "suspended"),
        ("subscription-resumed", "active"),
        ("subscription-stopped", "cancelled"),
    ]:
        response = stack.memberpress(mp.mp_subscription(name, status=status))
        assert response.status_code == 202, response.text
    bob_seq = response.json()["event_id"]
    _settled(stack, "Bob's cancellation handled")
    assert stack.win_back_planned(bob_seq)
    resumed = stack.memberpress(mp.mp_subscription("subscription-resumed", status="active"))
    assert resumed.status_code == 202, resumed.text
    _settled(stack, "Bob's comeback handled")
    assert stack.sequence(bob_seq)["outcome"] == "came_back"
    assert not stack.win_back_planned(bob_seq)

    # Eight identical deliveries at once, over two gunicorn workers: one acts.
    body = mp.mp_subscription("subscription-stopped", email="ivy@example.com", member_id=21)
    body["data"]["id"] = "21"
    start = threading.Barrier(8)
    codes: list[int] = []

    def deliver() -> None:
        start.wait()
        codes.append(stack.memberpress(body).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] * 7 + [202]

    # Erin: her membership was deleted in WordPress ("membership": false).
    erin = mp.mp_subscription(
        "subscription-stopped", email="erin@example.com", first_name="Erin", member_id=8
    )
    erin["data"].update(id="8", membership=False)
    assert stack.memberpress(erin).status_code == 202

    # Jane: her renewal's transaction webhook, then her cancellation.
    paid = stack.memberpress(mp.mp_transaction(expires_at="2027-01-01 23:59:59"))
    assert paid.json()["status"] == "recorded"
    jane = mp.mp_subscription(
        "subscription-stopped", email="jane@example.com", first_name="Jane", member_id=9
    )
    jane["data"]["id"] = "3"
    assert stack.memberpress(jane).status_code == 202
    _settled(stack, "Erin's and Jane's cancellations handled")
    wait_for(lambda: stack.emails_to("jane@example.com"), 30, "Jane's email")
    [jane_email] = stack.emails_to("jane@example.com")
    assert "until January 1, 2027" in jane_email
    assert len(stack.emails_to("erin@example.com")) == 1
    assert len(stack.emails_to("ivy@example.com")) == 1

    # WooCommerce: the typed secret is normalised; a signed [] gets 200.
    empty = stack.woocommerce(b"[]")
    assert (empty.status_code, empty.json()["status"]) == (200, "ignored")
    # Carol cancelled before WooCommerce's queue ran: her late `created` says pending-cancel.
    carol = {"email": "carol@example.com", "first_name": "Carol", "subscription_id": 5001}
    cancelled = stack.woocommerce(payloads.body(source_payloads.woocommerce(**carol)))
    assert cancelled.status_code == 202, cancelled.text
    carol_seq = cancelled.json()["event_id"]
    late = stack.woocommerce(
        payloads.body(source_payloads.woocommerce(**carol)), "subscription.created"
    )
    assert late.json()["status"] == "duplicate"
    # A cancellation 40 days old: no email now.
    old = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S")
    dan = {"email": "dan@example.com", "subscription_id": 5002, "modified_gmt": old}
    dan_reply = stack.woocommerce(payloads.body(source_payloads.woocommerce(**dan)))
    assert dan_reply.status_code == 202, dan_reply.text
    _settled(stack, "the WooCommerce cancellations handled")
    assert stack.sequence(carol_seq)["status"] == "active"
    assert "40 days old" in stack.sequence(dan_reply.json()["event_id"])["note"]

    # PMPro: Erin-the-second joins, cancels and rejoins the same day.
    pm = {"email": "erin.pm@example.com", "user_id": 77}
    assert stack.pmpro(mp.pmpro_push(level_id="1", **pm)).status_code == 202
    pm_cancel = stack.pmpro(mp.pmpro_push(level_id="0", **pm))
    assert pm_cancel.status_code == 202
    pm_seq = pm_cancel.json()["event_id"]
    _settled(stack, "the PMPro cancellation handled")
    assert stack.win_back_planned(pm_seq)
    assert stack.pmpro(mp.pmpro_push(level_id="1", **pm)).status_code == 202
    _settled(stack, "the PMPro rejoin handled")
    assert stack.sequence(pm_seq)["outcome"] == "came_back"
    assert not stack.win_back_planned(pm_seq)

    assert stack.emails_to("dan@example.com") == []
    assert len(stack.emails_to("carol@example.com")) == 1
