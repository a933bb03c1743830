"""The safety net on the real stack (`make run`'s processes: redis-server, gunicorn, the
worker's processes): a template broken on disk while everything runs still sends the last
good email, and /healthz says what broke."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devstack.redis_server import free_port
from tests import payloads
from tests.conftest import parts, read_eml
from tests.faultkit import patient, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_a_file_broken_while_the_stack_runs_still_sends_the_last_good_email(tmp_path):
    templates = tmp_path / "email_templates"
    shutil.copytree(ROOT / "email_templates", templates)
    page = templates / "en" / "feedback_request.html"
    page.write_text(
        page.read_text().replace("Thank you for being with us", "We are glad you were with us")
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAREWELL_", "REDIS_URL"))}
    env.update(
        PORT=str(port),
        FAREWELL_VAR_DIR=str(tmp_path),
        FAREWELL_TEMPLATES_DIR=str(templates),
        FAREWELL_PLAYBOOK=str(templates / "playbook.toml"),
        WEB_CONCURRENCY="1",
        FAREWELL_WORKER_PROCESSES="2",
    )
    key = "aB3dE5gH7jK9"  # the key MemberPress shows, copied into var/local.env
    (tmp_path / "local.env").write_text(f"FAREWELL_MEMBERPRESS_KEY={key}\n")
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    outbox = tmp_path / "outbox"

    def cancel(n: int) -> str:
        body = payloads.memberpress(
            email=f"member{n}@example.com", member_id=200 + n, subscription_id=f"s{n}"
        )
        reply = requests.post(
            f"{base}/hooks/memberpress?key={key}", data=payloads.body(body), timeout=10
        )
        assert reply.status_code == 202, reply.text

        def mine() -> list[Path]:
            return [
                p
                for p in outbox.glob("*.eml")
                if read_eml(p)["To"].addresses[0].addr_spec == f"member{n}@example.com"
            ]

        [eml] = wait_for(mine, 30, f"member{n}'s email")
        html, text = parts(read_eml(eml))
        return html + text

    try:
        wait_for(
            lambda: "Press Ctrl-C" in (tmp_path / "run.log").read_text(), 60, "the start-up banner"
        )
        assert "We are glad you were with us" in cancel(1)

        # A marketer saves an unclosed {% if %} while everything runs.
        broken = page.read_text().replace(
            "<p>If you have", "{% if first_name %}<p>Hello again</p>\n<p>If you have"
        )
        page.write_text(broken)
        later = time.time() + 2
        os.utime(page, (later, later))
        got = cancel(2)
        assert "We are glad you were with us" in got and "Hello again" not in got

        health = requests.get(f"{base}/healthz", timeout=10).json()
        [failure] = health["template_failures"]
        assert failure["email"] == "en/feedback_request"
        assert failure["fallback"] == "last_good"
        assert failure["where"].startswith("en/feedback_request.html:")
        assert "syntax error" in failure["error"]
        assert any("en/feedback_request failed at send time" in w for w in health["warnings"])
        assert "farewell_template_failures 1" in requests.get(f"{base}/metrics", timeout=10).text

        # Fixed on disk: the worker's sweep clears the warning without waiting for a send.
        page.write_text(broken.replace("{% if first_name %}<p>Hello again</p>\n", ""))
        later += 2
        os.utime(page, (later, later))

        def cleared() -> bool:
            return requests.get(f"{base}/healthz", timeout=10).json()["template_failures"] == []

        wait_for(cleared, 60, "the failure to clear")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=patient(40)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
