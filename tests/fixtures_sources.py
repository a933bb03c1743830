"""Fixtures for the WooCommerce, PMPro, Stripe and Standard Webhooks sources: signed
deliveries (signed the way each sender signs, cross-checked with the official libraries
where they exist) and a real local HTTP server standing in for Stripe's API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import standardwebhooks
import stripe as stripe_sdk

from devstack.redis_server import free_port
from tests import payloads
from tests.source_secrets import (
    PMPRO_KEY,
    STANDARD_SECRET,
    STRIPE_API_KEY,
    STRIPE_SECRET,
    WOOCOMMERCE_SECRET,
)


def stripe_header(payload: bytes, secret: str = STRIPE_SECRET, timestamp: int | None = None):
    """Stripe's documented scheme, written here independently of hooks/sources/stripe.py
    and checked against the official SDK before use, so a shared misreading cannot pass."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    header = f"t={timestamp},v1={mac.hexdigest()}"
    if secret == STRIPE_SECRET and abs(time.time() - timestamp) < 300:
        stripe_sdk.Webhook.construct_event(payload.decode(), header, secret, tolerance=300)
    return header


def standard_headers(
    payload: bytes,
    secret: str = STANDARD_SECRET,
    msg_id: str = "msg_2b3X9a",
    timestamp: int | None = None,
) -> dict[str, str]:
    """Signed by the official `standardwebhooks` package."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = standardwebhooks.Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(timestamp, UTC), payload.decode()
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def woocommerce_headers(payload: bytes, topic: str, secret: str = WOOCOMMERCE_SECRET):
    """As WC_Webhook::deliver builds them (no official Python signer exists)."""
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return {
        "X-WC-Webhook-Source": "https://shop.example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[1],
        "X-WC-Webhook-Signature": base64.b64encode(mac).decode(),
        "X-WC-Webhook-ID": "5",
        "X-WC-Webhook-Delivery-ID": f"{time.monotonic_ns()}",  # fresh on every send
        "User-Agent": "WooCommerce/8.9.1 Hookshot (WordPress/6.5.3)",
    }


class SourcePoster:
    """`post_source`: deliver a webhook as each plugin would."""

    def __init__(self, client) -> None:
        self.client = client

    def woocommerce(self, payload, *, topic="subscription.updated", headers=None, raw=None):
        data = raw if raw is not None else payloads.body(payload)
        return self.client.post(
            "/hooks/woocommerce",
            data=data,
            headers=headers if headers is not None else woocommerce_headers(data, topic),
            content_type="application/json",
        )

    def pmpro(self, payload, *, key: str | None = PMPRO_KEY, raw=None):
        url = "/hooks/pmpro" + (f"?key={key}" if key is not None else "")
        data = raw if raw is not None else payloads.body(payload)
        # The add-on's header array has a stray colon ('Content-Type:'), so no JSON type.
        return self.client.post(url, data=data, content_type="application/x-www-form-urlencoded")

    def stripe(self, payload, *, header: str | None = None, raw=None):
        data = raw if raw is not None else payloads.body(payload)
        return self.client.post(
            "/hooks/stripe",
            data=data,
            headers={"Stripe-Signature": header if header is not None else stripe_header(data)},
            content_type="application/json; charset=utf-8",
        )

    def standard(self, payload, *, headers=None, raw=None):
        data = raw if raw is not None else payloads.body(payload)
        return self.client.post(
            "/hooks/standard",
            data=data,
            headers=headers if headers is not None else standard_headers(data),
            content_type="application/json",
        )


@pytest.fixture
def post_source(client) -> SourcePoster:
    return SourcePoster(client)


class StripeApi:
    """A real HTTP server answering `GET /v1/customers/{id}` like Stripe, checking the
    Bearer key. `stop()` makes it unreachable (connection refused); `start()` brings it
    back on the same port."""

    def __init__(self, api_key: str = STRIPE_API_KEY) -> None:
        self.api_key = api_key
        self.port = free_port()
        self.customers: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []  # (path, authorization)
        self._server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StripeApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization", "")
                api.requests.append((self.path, auth))
                if auth != f"Bearer {api.api_key}":
                    return self._reply(401, {"error": {"type": "invalid_request_error"}})
                prefix = "/v1/customers/"
                customer = api.customers.get(self.path.removeprefix(prefix))
                if not self.path.startswith(prefix) or customer is None:
                    return self._reply(404, {"error": {"code": "resource_missing"}})
                return self._reply(200, customer)

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def stripe_api() -> Iterator[StripeApi]:
    api = StripeApi()
    yield api
    api.stop()
