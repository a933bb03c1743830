"""`make run`'s processes for real: embedded redis-server, gunicorn from the Procfile and
the RQ worker; a MemberPress webhook over HTTP becomes an .eml file; Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from devstack.redis_server import free_port
from tests import payloads
from tests.conftest import read_eml
from tests.faultkit import patient, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_make_run_stack_turns_a_webhook_into_an_email_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAREWELL_", "REDIS_URL"))}
    env.update(PORT=str(port), FAREWELL_VAR_DIR=str(tmp_path), WEB_CONCURRENCY="1")
    # The owner copied the key MemberPress shows into var/local.env, as the banner says.
    key = "aB3dE5gH7j"
    (tmp_path / "local.env").write_text(f"FAREWELL_MEMBERPRESS_KEY={key}\n")
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(
            lambda: "Press Ctrl-C" in (tmp_path / "run.log").read_text(), 60, "the start-up banner"
        )
        banner = (tmp_path / "run.log").read_text()
        assert "/hooks/memberpress" in banner and "MemberPress: connected" in banner

        response = requests.post(
            f"http://127.0.0.1:{port}/hooks/memberpress?key={key}",
            data=payloads.body(payloads.memberpress()),
            headers={"Content-Type": "text/plain"},  # some MemberPress versions send this
            timeout=5,
        )
        assert response.status_code == 202, response.text
        outbox = tmp_path / "outbox"
        [eml] = wait_for(lambda: list(outbox.glob("*.eml")), 15, "the .eml in the outbox")
        message = read_eml(eml)
        assert message["To"].addresses[0].addr_spec == "jane.doe@example.com"
        assert message["Subject"] == "Thank you, Jane — may we ask one thing?"

        redis_port = int(re.search(r"Redis: redis://127\.0\.0\.1:(\d+)", banner).group(1))
        # Every process of the stack: gunicorn's, the worker supervisor and its processes.
        family = psutil.Process(proc.pid).children(recursive=True)
        assert any("worker" in " ".join(p.cmdline()) for p in family)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=patient(40)) == 0
        assert not [p.pid for p in family if p.is_running() and p.status() != "zombie"]
        assert "farewell: stopped." in (tmp_path / "run.log").read_text()
        assert not _port_open(port), "web still listening after Ctrl-C"
        assert not _port_open(redis_port), "redis still listening after Ctrl-C"
        # The embedded Redis kept its data on disk (AOF) for the next run.
        assert any((tmp_path / "redis").rglob("*.aof*"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
