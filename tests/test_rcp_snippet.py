"""docs/rcp-snippet.php, run by a real PHP against a stub of WordPress: its signed request
must be accepted by /hooks/standard and turn into the email."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import standardwebhooks

from tests.conftest import json_of
from tests.source_secrets import STANDARD_SECRET
from worker.events import EventKind

ROOT = Path(__file__).resolve().parent.parent
PHP = shutil.which("php")
pytestmark = pytest.mark.skipif(PHP is None, reason="php is not installed (.ci/run installs it)")


def run_snippet(status: str) -> dict:
    result = subprocess.run(
        [PHP, str(ROOT / "tests/php/rcp_harness.php"), str(ROOT / "docs/rcp-snippet.php"), status],
        env={
            "FAREWELL_URL": "https://farewell.example.com/hooks/standard",
            "FAREWELL_SECRET": STANDARD_SECRET,
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


def test_the_snippet_signs_like_the_official_library():
    request = run_snippet("cancelled")
    assert request["url"] == "https://farewell.example.com/hooks/standard"
    payload = standardwebhooks.Webhook(STANDARD_SECRET).verify(request["body"], request["headers"])
    assert payload["type"] == "membership.cancelled"


def test_a_cancellation_from_the_snippet_becomes_the_email(client, work, outbox, runtime):
    request = run_snippet("cancelled")
    response = client.post(
        "/hooks/standard", data=request["body"].encode(), headers=request["headers"]
    )
    assert response.status_code == 202
    work()
    event = runtime.store.load_event(json_of(response)["event_id"])
    assert event.kind is EventKind.CANCELLED
    assert event.member.locale == "pt_BR"
    assert event.subscription_id == "rcp-314"
    assert event.access_ends_at == datetime(2030, 6, 1, 23, 59, 59, tzinfo=UTC)
    [message] = outbox()
    assert message["To"].addresses[0].addr_spec == "rosa.lima@example.com"


def test_an_activation_from_the_snippet_is_a_comeback(client, runtime):
    request = run_snippet("active")
    response = client.post(
        "/hooks/standard", data=request["body"].encode(), headers=request["headers"]
    )
    assert response.status_code == 202
    event = runtime.store.load_event(json_of(response)["event_id"])
    assert event.kind is EventKind.REACTIVATED
    payload = json.loads(request["body"])
    assert payload["type"] == "membership.reactivated"
    assert "access_ends_at" not in payload["data"]
