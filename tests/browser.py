"""Fixtures for pages in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright; no browser download). Registered for every test by `pytest_plugins` in
conftest.py.

Without Chromium the browser tests skip locally, but fail on CI (CI=true).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


@dataclass
class LiveServer:
    url: str


@pytest.fixture
def live_server(app) -> Iterator[LiveServer]:
    """The test's app served over real HTTP on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(f"http://127.0.0.1:{server.server_port}")
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="session")
def _chromium():
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required on CI (.ci/run installs Debian's chromium)")
        pytest.skip("no Chromium installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(_chromium, tmp_path):
    """A fresh browser context (no cookies) per test; screenshots go under tmp_path."""
    context = _chromium.new_context(viewport={"width": 420, "height": 900})
    yield context
    context.close()
