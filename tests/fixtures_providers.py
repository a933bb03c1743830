"""A real local HTTP server speaking the send APIs of Postmark, Mailgun and SendGrid as
their documentation describes them (auth header, required fields, success and error
bodies), scriptable to fail, plus fixtures that point a worker runtime at it."""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devstack.redis_server import free_port
from tests.rq_helpers import release_due, run_queued
from worker.runtime import Runtime, set_runtime
from worker.settings import Settings

POSTMARK_TOKEN = "pm-server-token-7d1e"
MAILGUN_KEY = "key-mailgun-3b9f"
MAILGUN_DOMAIN = "mg.example.com"
SENDGRID_KEY = "SG.sendgrid-key-51aa"
POSTMARK_STREAMS = {"outbound", "broadcast"}
# Failure modes a test can script with `fail_next`.
MODES = {"timeout", "429", "500", "401", "invalid", "inactive", "unverified"}


@dataclass
class Received:
    provider: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = ""
    reply_id: str = ""  # the message id the provider answered with

    def form_values(self, name: str) -> list[str]:
        return [v for k, v in self.form if k == name]


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    import json

    return Response(json.dumps(body), status, headers, content_type="application/json")


class ProviderApi:
    """Everything it received is in `received`; what it accepted (answered 2xx) in
    `accepted`. `fail_next("500", "429")` scripts the next replies, in order."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.accepted: list[Received] = []
        self.failures: deque[str] = deque()
        self.retry_after = "7"
        self.hang_seconds = 2.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: Any = None

    def start(self) -> ProviderApi:
        """Listen (again, on the same port after `stop`: a provider coming back)."""
        self._stop.clear()
        self._server = make_server("127.0.0.1", self.port, self.wsgi, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused, as during a provider outage."""
        if self._server is None:
            return
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._server = None

    def fail_next(self, *modes: str) -> None:
        assert set(modes) <= MODES, modes
        self.failures.extend(modes)

    # --- WSGI --------------------------------------------------------------------------

    def wsgi(self, environ, start_response):
        request = Request(environ)
        path = request.path
        if path == "/email":
            handler, provider = self._postmark, "postmark"
        elif path.startswith("/v3/") and path.endswith("/messages"):
            handler, provider = self._mailgun, "mailgun"
        elif path == "/v3/mail/send":
            handler, provider = self._sendgrid, "sendgrid"
        else:
            return Response("not found", 404)(environ, start_response)
        if request.method != "POST":
            return Response("method not allowed", 405)(environ, start_response)
        seen = Received(
            provider,
            path,
            dict(request.headers),
            request.get_json(silent=True),
            list(request.form.items(multi=True)),
            request.content_type or "",
        )
        with self._lock:
            self.received.append(seen)
            mode = self.failures.popleft() if self.failures else None
        if mode == "timeout":
            # The provider takes the message but the reply comes too late for the client.
            self._stop.wait(self.hang_seconds)
            mode = None
        response = handler(request, seen, mode)
        if response.status_code < 300:
            with self._lock:
                self.accepted.append(seen)
        return response(environ, start_response)

    def _common(self, mode: str | None, body: Callable[[str], Any]) -> Response | None:
        if mode == "429":
            return _json(body("rate limit exceeded"), 429, {"Retry-After": self.retry_after})
        if mode == "500":
            return Response("Internal Server Error", 500)
        return None

    # --- Postmark: POST /email ---------------------------------------------------------

    def _postmark(self, request: Request, seen: Received, mode: str | None) -> Response:
        def error(code: int, message: str, status: int = 422) -> Response:
            return _json({"ErrorCode": code, "Message": message}, status)

        if request.headers.get("X-Postmark-Server-Token") != POSTMARK_TOKEN or mode == "401":
            return error(10, "Request does not contain a valid Server token.", 401)
        if "application/json" not in request.headers.get("Accept", ""):
            return error(409, "JSON required in Accept header.", 415)
        common = self._common(mode, lambda m: {"ErrorCode": 429, "Message": m})
        if common is not None:
            return common
        data = seen.json
        if not isinstance(data, dict):
            return error(402, "Invalid JSON")
        to = str(data.get("To", ""))
        if mode == "invalid" or "@" not in to:
            return error(300, f"Error parsing 'To': Illegal email address '{to}'.")
        if mode == "inactive":
            return error(
                406,
                "You tried to send to recipient(s) that have been marked as inactive. "
                f"Found inactive addresses: {to}.",
            )
        if mode == "unverified" or not data.get("From"):
            return error(400, "The 'From' address you supplied is not a Sender Signature.")
        if not (data.get("HtmlBody") or data.get("TextBody")):
            return error(300, "Provide either email TextBody or HtmlBody or both.")
        if data.get("MessageStream", "outbound") not in POSTMARK_STREAMS:
            return error(1235, "The message stream for the provided 'ID' was not found.")
        seen.reply_id = str(uuid.uuid4())
        return _json(
            {
                "To": to,
                "SubmittedAt": "2026-11-25T21:00:00.0000000Z",
                "MessageID": seen.reply_id,
                "ErrorCode": 0,
                "Message": "OK",
            },
            200,
        )

    # --- Mailgun: POST /v3/<domain>/messages ---------------------------------------------

    def _mailgun(self, request: Request, seen: Received, mode: str | None) -> Response:
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != ("api", MAILGUN_KEY):
            return Response("Forbidden", 401)
        if mode == "401":
            return Response("Forbidden", 401)
        domain = request.path.split("/")[2]
        if domain != MAILGUN_DOMAIN:
            return _json({"message": f"Domain not found: {domain}"}, 404)
        common = self._common(mode, lambda m: {"message": m})
        if common is not None:
            return common
        if not seen.content_type.startswith("multipart/form-data"):
            return _json({"message": "expected multipart/form-data"}, 400)
        form = request.form
        for name in ("from", "to", "subject"):
            if not form.get(name):
                return _json({"message": f"{name} parameter is missing"}, 400)
        if mode == "invalid" or "@" not in form["to"]:
            return _json(
                {"message": "'to' parameter is not a valid address. please check documentation"},
                400,
            )
        if mode == "unverified":
            return _json({"message": "Domain mg.example.com is not allowed to send"}, 403)
        if not (form.get("text") or form.get("html")):
            return _json({"message": "Need at least one of 'text' or 'html' parameters"}, 400)
        seen.reply_id = f"{uuid.uuid4().hex}@{MAILGUN_DOMAIN}"
        return _json({"id": f"<{seen.reply_id}>", "message": "Queued. Thank you."}, 200)

    # --- SendGrid: POST /v3/mail/send ----------------------------------------------------

    def _sendgrid(self, request: Request, seen: Received, mode: str | None) -> Response:
        def errors(status: int, *items: tuple[str, str | None]) -> Response:
            body = [{"message": m, "field": f, "help": None} for m, f in items]
            return _json({"errors": body}, status)

        if request.headers.get("Authorization") != f"Bearer {SENDGRID_KEY}" or mode == "401":
            return errors(401, ("The provided authorization grant is invalid", None))
        common = self._common(mode, lambda m: {"errors": [{"message": m, "field": None}]})
        if common is not None:
            return common
        data = seen.json
        if not isinstance(data, dict):
            return errors(400, ("Bad Request", None))
        people = data.get("personalizations") or []
        if not people or not people[0].get("to"):
            return errors(400, ("The to array is required.", "personalizations.0.to"))
        if mode == "invalid" or "@" not in str(people[0]["to"][0].get("email", "")):
            return errors(
                400, ("Does not contain a valid address.", "personalizations.0.to.0.email")
            )
        if mode == "unverified":
            return errors(
                403, ("The from address does not match a verified Sender Identity.", "from")
            )
        if not (data.get("from") or {}).get("email"):
            return errors(400, ("The from object must be provided.", "from"))
        if not data.get("subject"):
            return errors(400, ("The subject is required.", "subject"))
        content = data.get("content") or []
        if not content or (content[0].get("type") != "text/plain" and len(content) > 1):
            return errors(400, ("text/plain content must be first.", "content"))
        custom = data.get("custom_args") or {}
        if not all(isinstance(v, str) for v in custom.values()):
            return errors(400, ("custom_args values must be strings.", "custom_args"))
        seen.reply_id = uuid.uuid4().hex[:22]
        return Response("", 202, {"X-Message-Id": seen.reply_id})


@pytest.fixture
def provider_api() -> Iterator[ProviderApi]:
    api = ProviderApi().start()
    yield api
    api.stop()


def provider_settings(settings: Settings, name: str, base: str, **overrides: Any) -> Settings:
    """`settings` switched to one provider whose API lives at `base`."""
    values: dict[str, Any] = {
        "mail_transport": name,
        "mail_connect_timeout": 2.0,
        "mail_read_timeout": 5.0,  # tests of lost replies pass a short one
        "postmark_token": POSTMARK_TOKEN,
        "postmark_api_base": base,
        "mailgun_api_key": MAILGUN_KEY,
        "mailgun_domain": MAILGUN_DOMAIN,
        "mailgun_api_base": base,
        "sendgrid_api_key": SENDGRID_KEY,
        "sendgrid_api_base": base,
    }
    values.update(overrides)
    return replace(settings, **values)


@pytest.fixture
def use_provider(app, settings: Settings, provider_api: ProviderApi):
    """Install a worker runtime that sends through `name` at the local provider server.
    Depends on `app`, whose outbox runtime this one replaces."""
    made: list[Runtime] = []

    def install(name: str, **overrides: Any) -> Runtime:
        rt = Runtime(provider_settings(settings, name, provider_api.url, **overrides))
        set_runtime(rt)
        made.append(rt)
        return rt

    yield install
    for rt in made:
        rt.close()
    set_runtime(None)


def run_jobs(rt: Runtime) -> None:
    """Run every queued job now, like a worker in burst mode."""
    run_queued(rt.queue)


def release_scheduled(rt: Runtime, within: float = 2 * 3600) -> list[str]:
    """Time passes by up to the longest retry wait: every job scheduled within `within`
    seconds (a retry waiting out its delay) becomes due now. Playbook steps planned days
    ahead, like the win-back, stay scheduled."""
    return release_due(rt.queue, time.time() + within)
