"""The real thing, for fault tests: redis-server, the Procfile's `web` (gunicorn) and
`worker` processes, an aiosmtpd sink that counts what arrives, and a webhook sender that
behaves like MemberPress (retries network errors, never a 5xx).

Every process gets its own session, so a kill takes down what a container kill would
(gunicorn's master and workers, the RQ worker and its scheduler).
"""

from __future__ import annotations

import asyncio
import collections
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
from aiosmtpd.controller import Controller
from rq import Queue

from devstack.redis_server import RedisServer, free_port
from devstack.stack import ROOT, read_procfile
from tests import payloads

MEMBERPRESS_KEY = "fault-mp-key-8c1d2e"
SECRET_KEY = "fault-secret-key-0123456789abcdef"


# Deadlines in these tests say what an idle laptop needs, with room to spare; a busy one
# (other work, CPU hogs) can be several times slower again. Every deadline is stretched by
# SLACK, so that it only ever stops a test that hangs: no test passes or fails by speed.
SLACK = 5


def patient(seconds: float) -> float:
    """A deadline for waiting on real processes: `seconds` stretched by SLACK."""
    return seconds * SLACK


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    """Poll until `predicate` holds; fail after `timeout` seconds, stretched by SLACK."""
    timeout = patient(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- SMTP sink ----------------------------------------------------------------------------


@dataclass
class CountingSink:
    """An aiosmtpd handler that records every accepted message by recipient and Message-ID.

    `rcpt_delay` makes each RCPT slow (before the point of no return), `data_delay` makes
    the DATA reply slow (after it): the fault tests use them to catch workers mid-send.
    """

    rcpt_delay: float = 0.0
    data_delay: float = 0.0
    received: list[tuple[str, str]] = field(default_factory=list)  # (recipient, message id)
    rcpts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpts += 1
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((rcpt.lower(), str(message["Message-ID"])))
        return "250 Message accepted for delivery"

    def recipients(self) -> collections.Counter:
        with self.lock:
            return collections.Counter(r for r, _ in self.received)

    def count(self) -> int:
        with self.lock:
            return len(self.received)


class SmtpSink:
    def __init__(self, **delays: float) -> None:
        self.handler = CountingSink(**delays)
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


# --- processes ----------------------------------------------------------------------------


class Proc:
    """One Procfile process in its own session."""

    def __init__(self, name: str, command: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log
        self.popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            ["bash", "-c", f"exec {self.command}"],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.popen is not None:
            try:
                os.killpg(self.popen.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash, an OOM kill, a yanked container)."""
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(patient(10))


class Cluster:
    """Redis + N web + M worker processes sharing one Redis and one spool folder."""

    def __init__(self, tmp: Path, smtp_url: str, **env: str) -> None:
        self.tmp = tmp
        self.redis = RedisServer(tmp / "redis")
        self.procfile = read_procfile()
        self.webs: list[Proc] = []
        self.workers: list[Proc] = []
        self.ports: list[int] = []
        base = {k: v for k, v in os.environ.items() if not k.startswith(("FAREWELL_", "REDIS"))}
        base.update(
            REDIS_URL=self.redis.url,
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
            FAREWELL_SECRET_KEY=SECRET_KEY,
            FAREWELL_POSTAL_ADDRESS="Example Club, 1 Main St, Springfield",
            FAREWELL_MEMBERPRESS_KEY=MEMBERPRESS_KEY,
            FAREWELL_BASE_URL="https://members.example.com",
            FAREWELL_MAIL_TRANSPORT="smtp",
            FAREWELL_SMTP_URL=smtp_url,
            FAREWELL_SMTP_TIMEOUT="30",  # a busy test process answers late; never a lost reply
            FAREWELL_SPOOL_DIR=str(tmp / "spool"),
            FAREWELL_SPOOL_REPLAY_INTERVAL="1",
            FAREWELL_LOG_FORMAT="json",
            # One process per `worker` here: the tests kill and replace them one by one.
            FAREWELL_WORKER_PROCESSES="1",
            WEB_CONCURRENCY="1",
            WEB_THREADS="4",
        )
        base.update(env)
        self.env = base

    def start(self, webs: int = 1, workers: int = 1) -> Cluster:
        self.redis.start()
        for _ in range(webs):
            self.add_web()
        for _ in range(workers):
            self.add_worker()
        for port in self.ports:
            self.wait_web(port)
        return self

    def add_web(self, port: int | None = None) -> Proc:
        port = port or free_port()
        index = len(self.webs)
        env = {**self.env, "PORT": str(port)}
        proc = Proc(f"web{index}", self.procfile["web"], env, self.tmp / f"web{index}.log").start()
        self.webs.append(proc)
        if port not in self.ports:
            self.ports.append(port)
        return proc

    def add_worker(self) -> Proc:
        index = len(self.workers)
        proc = Proc(
            f"worker{index}", self.procfile["worker"], self.env, self.tmp / f"worker{index}.log"
        ).start()
        self.workers.append(proc)
        return proc

    def replace_worker(self, index: int) -> Proc:
        """SIGKILL worker `index` and start a fresh one in its place (a supervisor's job)."""
        old = self.workers[index]
        old.kill()
        proc = Proc(old.name, old.command, old.env, old.log_path).start()
        self.workers[index] = proc
        return proc

    def restart_web(self, index: int) -> Proc:
        old = self.webs[index]
        proc = Proc(old.name, old.command, old.env, old.log_path).start()
        self.webs[index] = proc
        self.wait_web(int(old.env["PORT"]))
        return proc

    def wait_web(self, port: int, timeout: float = 30.0) -> None:
        def answers() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (
                    200,
                    503,
                )
            except requests.RequestException:
                return False

        wait_for(answers, timeout, f"web on port {port}")

    def url(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[index % len(self.ports)]}"

    def restart_redis(self) -> None:
        self.redis = RedisServer(self.redis.data_dir, port=self.redis.port).start()

    def redis_client(self):
        import redis

        return redis.Redis.from_url(self.redis.url, decode_responses=True)

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        for proc in self.webs + self.workers:
            if proc.alive:
                proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.webs + self.workers:
            if proc.popen is None:
                continue
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        self.redis.kill()


# --- the sender ---------------------------------------------------------------------------


def member_email(i: int) -> str:
    return f"member{i:04d}@example.org"


def cancellation(i: int) -> bytes:
    return payloads.body(
        payloads.memberpress(
            email=member_email(i),
            first_name=f"Member{i}",
            member_id=1000 + i,
            subscription_id=str(50_000 + i),
        )
    )


@dataclass
class Delivery:
    member: int
    status: int | None  # None: never got an HTTP answer
    attempts: int
    body: dict = field(default_factory=dict)


class Sender:
    """Delivers webhooks like MemberPress: a network error is retried (after a pause), an
    HTTP answer — any status — is final. It keeps retrying for minutes (a web process the
    test killed may take long to come back on a busy machine)."""

    def __init__(self, urls: Callable[[int], str], retries: int = 800, pause: float = 0.25):
        self.urls = urls
        self.retries = retries
        self.pause = pause
        self.local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def deliver(self, i: int, attempt_offset: int = 0) -> Delivery:
        data = cancellation(i)
        for attempt in range(1, self.retries + 1):
            url = f"{self.urls(i + attempt + attempt_offset)}/hooks/memberpress"
            try:
                response = self._session().post(
                    url,
                    data=data,
                    headers={"MEMBERPRESS-WEBHOOK-KEY": MEMBERPRESS_KEY},
                    timeout=10,
                )
            except requests.RequestException:
                self.local.__dict__.pop("session", None)
                time.sleep(self.pause)
                continue
            try:
                body = response.json()
            except ValueError:
                body = {}
            return Delivery(i, response.status_code, attempt, body)
        return Delivery(i, None, self.retries)

    def stream(self, members: Iterable[int], rate: float, threads: int = 4) -> list[Delivery]:
        """Send at about `rate` webhooks per second from `threads` senders; returns when all
        got their final answer."""
        members = list(members)
        start = time.monotonic()

        def paced(n: int, i: int) -> Delivery:
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            return self.deliver(i)

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(paced, range(len(members)), members))


@dataclass
class Tally:
    sent: int  # webhook deliveries (first sends, not counting network retries)
    accepted: int  # distinct members whose cancellation got a 2xx
    emails: int  # messages that reached the SMTP sink
    duplicates: int  # messages beyond the first per member
    lost: int  # accepted members without an email
    # Emails to members whose webhook never got a 2xx: possible, not wrong (a request cut
    # off after the event was recorded), so reported rather than asserted.
    unexpected: int

    def line(self, name: str) -> str:
        return (
            f"[{name}] webhooks sent {self.sent}, accepted {self.accepted}, emails "
            f"{self.emails}, duplicates {self.duplicates}, lost {self.lost}, "
            f"to members never answered 2xx {self.unexpected}"
        )


def tally(deliveries: list[Delivery], sink: CountingSink) -> Tally:
    accepted = {d.member for d in deliveries if d.status is not None and 200 <= d.status < 300}
    got = sink.recipients()
    expected = {member_email(i) for i in accepted}
    return Tally(
        sent=len(deliveries),
        accepted=len(accepted),
        emails=sum(got.values()),
        duplicates=sum(n - 1 for n in got.values() if n > 1),
        lost=len(expected - set(got)),
        unexpected=len(set(got) - expected),
    )


def settle(
    sink: CountingSink,
    expected: int,
    timeout: float,
    quiet: float = 2.0,
    cluster: Cluster | None = None,
) -> None:
    """Wait until `expected` messages arrived, then `quiet` seconds more so that a late
    duplicate would be seen too. On a timeout, say where the missing ones are stuck."""
    try:
        wait_for(lambda: sink.count() >= expected, timeout, f"{expected} emails")
    except AssertionError as exc:
        detail = diagnose(cluster) if cluster else ""
        raise AssertionError(f"{exc}; got {sink.count()}; {detail}") from None
    time.sleep(quiet)


def diagnose(cluster: Cluster) -> str:
    """Where work stands in Redis: claims by phase, pending events, RQ registries."""
    try:
        r = cluster.redis_client()
        claims = collections.Counter(
            (r.get(k) or "").split("|")[0].split(":")[0] for k in r.scan_iter("farewell:send:*")
        )
        q = Queue("farewell", connection=r)
        return (
            f"claims {dict(claims)}, pending {r.zcard('farewell:pending')}, "
            f"queued {q.count}, started {q.started_job_registry.count}, "
            f"failed {q.failed_job_registry.count}, scheduled {q.scheduled_job_registry.count}"
        )
    except Exception as exc:  # diagnostics must not hide the real failure
        return f"(no diagnostics: {exc})"


def report(line: str) -> None:
    """Figures for the closing report: printed, and appended to $FAREWELL_FAULT_REPORT."""
    print(line)
    path = os.environ.get("FAREWELL_FAULT_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(line + "\n")
