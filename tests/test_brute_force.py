"""Guessing a credential gets slow: refused admin logins and bounce-endpoint keys count
towards FAREWELL_RATE_LIMIT per client (real Redis), then that client gets 429 with
Retry-After, right credentials included. Guessable secrets are refused at start-up."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from devstack.stack import ROOT
from hooks import create_app
from worker.settings import Settings, SettingsError

PASSWORD = "correct-horse-battery"
POSTMARK_KEY = "pm-webhook-key-1234"
LIMIT = 20
WINDOW = 10**6  # fixed windows: a long one, so that no test run straddles two


@pytest.fixture
def guarded(settings, runtime):
    configured = replace(
        settings,
        admin_password=PASSWORD,
        postmark_webhook_key=POSTMARK_KEY,
        rate_limit=f"{LIMIT}/{WINDOW}",
    )
    return create_app({"TESTING": True, "SETTINGS": configured}).test_client()


ATTACKER = {"REMOTE_ADDR": "203.0.113.7"}
OWNER = {"REMOTE_ADDR": "198.51.100.2"}


def test_wrong_admin_passwords_are_throttled_per_address(guarded, caplog):
    caplog.set_level(logging.INFO)
    statuses = [
        guarded.get("/admin/", auth=("admin", f"guess-{n}"), environ_base=ATTACKER)
        for n in range(LIMIT + 5)
    ]
    assert [r.status_code for r in statuses[:LIMIT]] == [401] * LIMIT
    assert {r.status_code for r in statuses[LIMIT:]} == {429}
    assert 1 <= int(statuses[-1].headers["Retry-After"]) <= WINDOW
    # Locked: even the right password waits, or a brute force would still find it.
    right = guarded.get("/admin/", auth=("admin", PASSWORD), environ_base=ATTACKER)
    assert right.status_code == 429
    # The owner elsewhere is not locked out.
    owner = guarded.get("/admin/", auth=("admin", PASSWORD), environ_base=OWNER)
    assert owner.status_code == 200
    assert "admin: too many refused requests from one address, 429" in caplog.text


def test_a_browser_first_request_without_credentials_does_not_count(guarded):
    for _ in range(LIMIT + 5):
        assert guarded.get("/admin/", environ_base=OWNER).status_code == 401
    ok = guarded.get("/admin/", auth=("admin", PASSWORD), environ_base=OWNER)
    assert ok.status_code == 200


def test_wrong_bounce_keys_are_throttled_per_address(guarded, runtime, caplog):
    caplog.set_level(logging.INFO)
    url = "/hooks/postmark-bounce?key="
    complaint = {"RecordType": "SpamComplaint", "Email": "victim@example.com"}
    statuses = [
        guarded.post(f"{url}guess-{n:04d}", json=complaint, environ_base=ATTACKER).status_code
        for n in range(LIMIT + 5)
    ]
    assert statuses == [401] * LIMIT + [429] * 5
    right = guarded.post(url + POSTMARK_KEY, json=complaint, environ_base=ATTACKER)
    assert right.status_code == 429 and right.headers["Retry-After"]
    assert not runtime.store.is_suppressed("victim@example.com")
    # Postmark's own servers are another address: their deliveries still land.
    assert guarded.post(url + POSTMARK_KEY, json=complaint, environ_base=OWNER).status_code == 200
    assert "hooks/postmark-bounce: too many refused requests" in caplog.text


# --- weak secrets refused at start-up -------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("FAREWELL_ADMIN_PASSWORD", "a", "shorter than 12 characters"),
        ("FAREWELL_ADMIN_PASSWORD", "elevenchars", "shorter than 12 characters"),
        ("FAREWELL_MEMBERPRESS_KEY", "1", "shorter than 8 characters"),
        ("FAREWELL_PMPRO_KEY", "1234567", "shorter than 8 characters"),
        ("FAREWELL_WOOCOMMERCE_SECRET", "abc", "shorter than 8 characters"),
        ("FAREWELL_POSTMARK_WEBHOOK_KEY", "pm", "shorter than 8 characters"),
        ("FAREWELL_MAILGUN_WEBHOOK_SIGNING_KEY", "mg", "shorter than 8 characters"),
        ("FAREWELL_STANDARD_SECRET", "whsec_QQ==", "1 bytes after base64"),
        ("FAREWELL_STANDARD_SECRET", "whsec_" + "QUFB" * 7 + "QUE=", "23 bytes"),
    ],
)
def test_guessable_secrets_are_refused_at_start(variable, value, words):
    with pytest.raises(SettingsError, match=variable) as refused:
        Settings.from_env({variable: value})
    assert words in str(refused.value)


def test_the_keys_plugins_generate_are_accepted():
    settings = Settings.from_env(
        {
            "FAREWELL_MEMBERPRESS_KEY": "aB3dE5gH7j",  # MemberPress makes 10 characters
            "FAREWELL_ADMIN_PASSWORD": "twelve-chars",
            "FAREWELL_STANDARD_SECRET": "whsec_" + "QUFB" * 8,  # 24 bytes
        }
    )
    assert settings.memberpress_key == "aB3dE5gH7j"


@pytest.mark.parametrize("command", ["web", "worker"])
def test_both_processes_refuse_to_start_with_one_clear_line(redis_url, command):
    """The Procfile's processes, for real: exit 2 and name the variable, no traceback."""
    argv = {
        "web": [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "hooks:create_app()"],
        "worker": [sys.executable, "-m", "worker"],
    }[command]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FAREWELL_")},
        "REDIS_URL": redis_url,
        "PORT": "0",
        "FAREWELL_SECRET_KEY": "x" * 32,
        "FAREWELL_ADMIN_PASSWORD": "a",
    }
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "refusing to start: FAREWELL_ADMIN_PASSWORD is shorter than 12 characters" in output
    assert "Traceback" not in output
