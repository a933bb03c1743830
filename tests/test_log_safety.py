"""What reaches the logs of the real processes: no credential-bearing URL from a failing
notification (the worker's RQ traceback included), and no line forged by control
characters in a request path or a message, in either log format."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from rq.job import Job

from devstack.redis_server import free_port
from devstack.stack import ROOT, read_procfile
from hooks import create_app
from tests import payloads
from tests.conftest import MEMBERPRESS_KEY, SECRET_KEY, json_of
from tests.faultkit import wait_for
from worker import logs

pytestmark = pytest.mark.slow
READY = 300  # seconds: readiness of real processes on a busy box, never a speed budget
SECRET_PATH = "/services/T0FAREWELL/B0SECRET/xoxb-notify-secret-path"


def _env(tmp_path: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAREWELL_", "REDIS_URL"))}
    env.update(
        REDIS_URL=redis_url,
        FAREWELL_SECRET_KEY=SECRET_KEY,
        FAREWELL_POSTAL_ADDRESS="Example Club, 1 Main St, Springfield",
        FAREWELL_MEMBERPRESS_KEY=MEMBERPRESS_KEY,
        FAREWELL_OUTBOX_DIR=str(tmp_path / "outbox"),
        FAREWELL_SPOOL_DIR=str(tmp_path / "spool"),
        FAREWELL_WORKER_PROCESSES="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **extra,
    )
    return env


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_failing_notification_never_logs_the_notify_url(tmp_path, settings, runtime, log_format):
    # Nothing listens there: requests raises ConnectionError, whose message (and urllib3's
    # chained MaxRetryError) quotes the path, the secret part of a Slack webhook URL.
    notify_url = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"
    app = create_app({"TESTING": True, "SETTINGS": replace(settings, notify_url=notify_url)})
    response = app.test_client().post(
        "/hooks/memberpress",
        data=payloads.body(payloads.memberpress()),
        headers={"MEMBERPRESS-WEBHOOK-KEY": MEMBERPRESS_KEY},
    )
    event_id = json_of(response)["event_id"]
    env = _env(
        tmp_path,
        settings.redis_url,
        FAREWELL_NOTIFY_URL=notify_url,
        FAREWELL_LOG_FORMAT=log_format,
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        queue = runtime.queue

        def retry_scheduled() -> bool:
            job = Job.fetch_many([f"notify-cancel-{event_id}"], connection=queue.connection)[0]
            return job is not None and job.get_status() == "scheduled"

        wait_for(retry_scheduled, READY, "the failed notification's retry to be scheduled")
    finally:
        _stop(proc)
    text = log_path.read_text()
    assert "Traceback" in text  # the failure is logged, with its traceback...
    assert SECRET_PATH not in text  # ...and never the URL's secret part
    assert "xoxb-notify-secret-path" not in text
    assert "NotifyFailed: 127.0.0.1: ConnectionError" in text


# --- log forging --------------------------------------------------------------------------

FORGED_PATH = "/hooks/x%0d%0aFORGED%20line%0aFORGED-too%85FORGED-nel%0bFORGED-vt"


def _lines_starting_forged(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("FORGED")]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_request_path_cannot_forge_an_access_log_line(tmp_path, redis_url, log_format):
    """The Procfile's web process, for real: gunicorn decodes %0d%0a into PATH_INFO."""
    port = free_port()
    env = _env(tmp_path, redis_url, PORT=str(port), FAREWELL_LOG_FORMAT=log_format)
    env["WEB_CONCURRENCY"] = "1"
    log_path = tmp_path / "web.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {read_procfile()['web']}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return requests.get(f"{base}/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, READY, "gunicorn to answer /healthz")
        assert requests.post(base + FORGED_PATH, data=b"{}", timeout=120).status_code == 404
        wait_for(lambda: "FORGED" in log_path.read_text(errors="replace"), READY, "the access line")
    finally:
        _stop(proc)
    text = log_path.read_text(encoding="utf-8")
    assert _lines_starting_forged(text) == []
    access = [line for line in text.splitlines() if "FORGED" in line]
    assert len(access) == 1
    if log_format == "json":
        assert "/hooks/x\r\nFORGED line" in json.loads(access[0])["msg"]
    else:
        assert "/hooks/x\\r\\nFORGED line\\nFORGED-too\\x85FORGED-nel\\x0bFORGED-vt" in access[0]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_app_log_lines_escape_control_characters(settings, log_format):
    stream = io.StringIO()
    logs.configure(replace(settings, log_format=log_format), stream=stream)
    try:
        log = logging.getLogger("test.forging")
        hostile = "x\r\nFORGED 1\x85FORGED 2\u2028FORGED 3\x00\x1b[31m"
        log.warning("payload said %s", hostile)
        try:
            raise ValueError(f"bad value\nFORGED 4 {hostile}")
        except ValueError:
            log.exception("failed on %s", hostile)
    finally:
        logging.getLogger().handlers = [
            h for h in logging.getLogger().handlers if h.get_name() != "farewell"
        ]
    text = stream.getvalue()
    assert _lines_starting_forged(text) == []
    assert "\x00" not in text and "\x1b" not in text
    if log_format == "json":
        entries = [json.loads(line) for line in text.splitlines()]
        assert [e["msg"] for e in entries] == [f"payload said {hostile}", f"failed on {hostile}"]
        assert "FORGED 4" in entries[1]["exc"]
    else:
        lines = text.splitlines()
        assert lines[0].endswith(
            "payload said x\\r\\nFORGED 1\\x85FORGED 2\\u2028FORGED 3\\x00\\x1b[31m"
        )
        # The traceback follows the record on marked lines; none starts a record of its own.
        assert all(line.startswith("  | ") for line in lines[2:])
        assert any("FORGED 4" in line for line in lines[2:])
