"""Fixtures for real parts: a redis-server process, an aiosmtpd SMTP server, the Flask test
client and an in-process RQ worker."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from devstack.redis_server import RedisServer, free_port
from hooks import create_app
from tests import payloads
from tests.rq_helpers import run_queued
from tests.source_secrets import SOURCE_SETTINGS
from worker.runtime import Runtime, set_runtime
from worker.settings import Settings

pytest_plugins = [
    "tests.browser",
    "tests.fixtures_providers",
    "tests.fixtures_seq",
    "tests.fixtures_templates",
    "tests.fixtures_insights",
    "tests.fixtures_sources",
]

MEMBERPRESS_KEY = "mp-test-key-4f1c9a"
SECRET_KEY = "test-secret-key-0123456789abcdef"
BASE_URL = "https://members.example.com"


# --- Redis --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """An empty database on the session's Redis server."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own, for tests that stop, kill or restart it."""
    server = RedisServer(tmp_path / "own-redis").start()
    yield server
    server.kill()


# --- Settings, runtime, app ---------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        secret_key=SECRET_KEY,
        base_url=BASE_URL,
        site_name="Example Club",
        postal_address="Example Club, 1 Main St, Springfield",
        mail_from="Ana at Example Club <ana@example.com>",
        memberpress_key=MEMBERPRESS_KEY,
        outbox_dir=tmp_path / "outbox",
        spool_dir=tmp_path / "spool",
        spool_replay_interval=0,
        **SOURCE_SETTINGS,
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """The worker's per-process context, as jobs see it."""
    rt = Runtime(settings)
    set_runtime(rt)
    yield rt
    set_runtime(None)
    rt.close()


@pytest.fixture
def app(settings: Settings, runtime: Runtime):
    app = create_app({"TESTING": True, "SETTINGS": settings})
    yield app
    # Close the app's Redis clients now, not whenever GC finds them (ResourceWarning).
    services = app.extensions["farewell"]
    services.store.redis.close()
    services.queue.connection.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class HookPoster:
    """`post_hook`: deliver a webhook as a plugin would."""

    def __init__(self, client) -> None:
        self.client = client

    def memberpress(
        self,
        payload=None,
        *,
        key: str | None = MEMBERPRESS_KEY,
        via: str = "header",
        raw: bytes | None = None,
        content_type: str = "application/json",
    ):
        data = raw if raw is not None else payloads.body(payload or payloads.memberpress())
        headers = {}
        url = "/hooks/memberpress"
        if key is not None and via == "header":
            headers["MEMBERPRESS-WEBHOOK-KEY"] = key
        elif key is not None:
            url += f"?key={key}"
        return self.client.post(url, data=data, headers=headers, content_type=content_type)


@pytest.fixture
def post_hook(client) -> HookPoster:
    return HookPoster(client)


@pytest.fixture
def work(runtime: Runtime):
    """Run every queued job in this process, like a worker in burst mode."""

    def run() -> None:
        run_queued(runtime.queue)

    return run


# --- Mail ---------------------------------------------------------------------------------


def read_eml(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def parts(message: EmailMessage) -> tuple[str, str]:
    """An email's (text, html) bodies."""
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


@pytest.fixture
def outbox(settings: Settings):
    def messages() -> list[EmailMessage]:
        if not settings.outbox_dir.is_dir():
            return []
        return [read_eml(p) for p in sorted(settings.outbox_dir.glob("*.eml"))]

    return messages


@dataclass
class SmtpSink:
    """What the SMTP server received, and how it should answer the next RCPT."""

    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)  # each message's bytes as received
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    rcpt_reply: str | None = None  # e.g. "550 5.1.1 no such user"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.raw.append(envelope.content)
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    sink: SmtpSink

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield SmtpServer("127.0.0.1", port, sink)
    controller.stop()


@pytest.fixture
def smtp_settings(settings: Settings, smtp_server: SmtpServer) -> Settings:
    return replace(settings, mail_transport="smtp", smtp_url=smtp_server.url, smtp_timeout=5.0)


@pytest.fixture
def smtp_runtime(runtime: Runtime, smtp_settings: Settings) -> Iterator[Runtime]:
    """Jobs send through the test's SMTP server (the `runtime` fixture's outbox otherwise)."""
    rt = Runtime(smtp_settings)
    set_runtime(rt)
    yield rt
    set_runtime(runtime)
    rt.close()


def json_of(response) -> dict:
    return json.loads(response.data)


def stored_keys(redis_client) -> list[str]:
    """Every key except the operational ones (metrics counters, rate-limit windows, the
    Connections page's delivery record): what "nothing stored" means for a rejected request."""
    from worker import store, webhook_log

    operational = (store.METRICS_KEY, store.RATELIMIT_PREFIX, *webhook_log.RECORD_PREFIX)
    return sorted(k for k in redis_client.scan_iter() if not str(k).startswith(operational))
