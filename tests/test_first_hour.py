"""An owner's first hour, on `make run` itself (python -m devstack) in a temporary folder:
the CLI reaches the running Redis with no extra environment, the banner shows the admin,
a taken port and an unreachable Redis each get one line, a refused start prints no banner,
and the Connections page (in Chromium) shows a queued, a duplicate, an ignored and a
refused delivery with their reasons."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from devstack.redis_server import free_port
from devstack.stack import read_local_env
from tests import payloads
from tests.faultkit import wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
BANNER = "Farewell is running"
MEMBERPRESS_KEY = "aB3dE5gH7j"  # as MemberPress generates it: 10 characters


def _clean_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The machine's environment minus any Farewell or Redis setting: what a new owner has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAREWELL_", "REDIS_URL"))}
    env.update(FAREWELL_VAR_DIR=str(var_dir), WEB_CONCURRENCY="1", **extra)
    return env


def _cli(var_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "farewell"), *args],
        env=_clean_env(var_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _refused_start(var_dir: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devstack"],
        cwd=ROOT,
        env=_clean_env(var_dir, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _start_make_run(var_dir: Path) -> tuple[subprocess.Popen, int, Path]:
    """`make run` in var_dir, the owner having copied MemberPress's key into
    var/local.env as the banner says, up to its banner: (process, port, log path)."""
    (var_dir / "local.env").write_text(f"FAREWELL_MEMBERPRESS_KEY={MEMBERPRESS_KEY}\n")
    port = free_port()
    log_path = var_dir / "run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack"],
            cwd=ROOT,
            env=_clean_env(var_dir, PORT=str(port)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "Press Ctrl-C" in log_path.read_text(), 90, "the start-up banner")
    except BaseException:
        _stop(proc)
        raise
    return proc, port, log_path


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def running(tmp_path):
    """`make run` in tmp_path; yields (port, var_dir, log path)."""
    proc, port, log_path = _start_make_run(tmp_path)
    try:
        yield port, tmp_path, log_path
    finally:
        _stop(proc)


def _post(port: int, payload: dict, key: str = MEMBERPRESS_KEY) -> requests.Response:
    return requests.post(
        f"http://127.0.0.1:{port}/hooks/memberpress",
        data=payloads.body(payload),
        headers={"MEMBERPRESS-WEBHOOK-KEY": key, "Content-Type": "application/json"},
        timeout=10,
    )


def test_first_hour_on_make_run(running, tmp_path, _chromium):
    port, var_dir, log_path = running
    banner = log_path.read_text()
    local = read_local_env(var_dir)
    password = local["FAREWELL_ADMIN_PASSWORD"]
    assert len(password) >= 12
    assert f"Admin: http://localhost:{port}/admin" in banner
    assert "password: FAREWELL_ADMIN_PASSWORD in" in banner and password not in banner
    assert "MemberPress: connected, key from FAREWELL_MEMBERPRESS_KEY" in banner
    assert MEMBERPRESS_KEY not in banner

    # A queued, a duplicate, an ignored and a refused delivery.
    stopped = payloads.memberpress()
    assert _post(port, stopped).status_code == 202
    assert _post(port, stopped).status_code == 200
    assert _post(port, {**stopped, "event": "login"}).status_code == 200
    assert _post(port, stopped, key="not-the-key").status_code == 401

    # The CLI reaches the running Redis with no extra environment.
    report = _cli(var_dir, "report")
    assert report.returncode == 0, report.stderr
    listed = _cli(var_dir, "connections")
    assert listed.returncode == 0, listed.stderr
    assert "24 h: queued 1, duplicate 1, recorded 0, ignored 1, refused 1" in listed.stdout

    # The port is taken now: one line, and how to choose another.
    again = _refused_start(tmp_path / "second", PORT=str(port))
    assert again.returncode != 0 and BANNER not in again.stdout
    assert f"port {port} is already in use" in again.stderr
    assert f"PORT={port + 1} make run" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    # Another make run on the same folder (another port) would share its Redis data.
    same_dir = _refused_start(var_dir, PORT=str(free_port()))
    assert same_dir.returncode != 0 and BANNER not in same_dir.stdout
    assert "another `make run` (pid " in same_dir.stderr and str(var_dir) in same_dir.stderr
    assert len(same_dir.stderr.strip().splitlines()) == 1

    # make run answers this machine only (HOST=0.0.0.0 make run opens it to others).
    listening = {
        conn.laddr.ip
        for conn in psutil.net_connections("tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
    }
    assert listening == {"127.0.0.1"}

    _connections_in_chromium(_chromium, port, password, tmp_path)


def _connections_in_chromium(chromium, port: int, password: str, tmp_path: Path) -> None:
    """The Connections page in the session's Chromium (tests/browser.py), phone and desktop."""
    for width in (375, 1280):
        context = chromium.new_context(
            viewport={"width": width, "height": 900},
            http_credentials={"username": "admin", "password": password},
        )
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/admin/connections")
        source = page.locator("#source-memberpress")
        results = source.locator("table.deliveries tbody tr")
        assert [r.get_attribute("data-result") for r in results.all()] == [
            "ignored",
            "duplicate",
            "queued",
        ]
        assert "not one Farewell acts on" in results.nth(0).inner_text()
        assert "already received" in results.nth(1).inner_text()
        refused = source.locator("table.refusals tbody tr")
        assert refused.count() == 1
        assert "wrong key" in refused.first.inner_text()
        assert "127.0.0.x" in refused.first.inner_text()
        counts = {
            r: source.locator(f"tr[data-result='{r}'] td[data-period='24h']").inner_text()
            for r in ("queued", "duplicate", "ignored", "refused")
        }
        assert counts == {"queued": "1", "duplicate": "1", "ignored": "1", "refused": "1"}
        assert "FAREWELL_WOOCOMMERCE_SECRET" in page.locator("#source-woocommerce").inner_text()
        # Nothing wider than the screen at 375 px.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=tmp_path / f"connections-{width}.png", full_page=True)
        page.screenshot(path=tmp_path / f"connections-{width}-top.png")
        source.locator("table.deliveries").scroll_into_view_if_needed()
        page.screenshot(path=tmp_path / f"connections-{width}-deliveries.png")
        context.close()


def test_closing_the_terminal_stops_the_whole_stack(tmp_path):
    """SIGHUP (the terminal went away) stops web, worker and Redis as Ctrl-C does: the
    children live in sessions of their own, so nothing else would stop them."""
    proc, _port, log_path = _start_make_run(tmp_path)
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
        assert len(family) >= 3  # redis-server, gunicorn, the worker (and their children)
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(60) == 0
        _gone, alive = psutil.wait_procs(family, timeout=30)
        assert alive == [], [p.cmdline() for p in alive]
        assert "farewell: stopped." in log_path.read_text()
    finally:
        _stop(proc)


def test_cli_with_make_run_stopped_says_redis_cannot_be_reached(tmp_path):
    redis_port = free_port()
    (tmp_path / "local.env").write_text(
        "# --- written by make run on each start, for ./farewell; edit above this line ---\n"
        f"REDIS_URL=redis://127.0.0.1:{redis_port}/0\n"
    )
    result = _cli(tmp_path, "report")
    assert result.returncode == 1
    assert f"Redis at redis://127.0.0.1:{redis_port}/0 cannot be reached" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unreachable_redis_url_is_one_line_and_no_banner(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = _refused_start(tmp_path, PORT=str(free_port()), REDIS_URL=url)
    assert result.returncode != 0 and BANNER not in result.stdout
    assert f"Redis at {url} cannot be reached" in result.stderr
    assert "healthz" not in result.stderr


def test_a_refused_start_prints_no_banner(tmp_path):
    # The worker refuses an unknown mail transport at start; web alone is not "running".
    result = _refused_start(tmp_path, PORT=str(free_port()), FAREWELL_MAIL_TRANSPORT="bogus")
    assert result.returncode != 0
    assert BANNER not in result.stdout + result.stderr
    assert "FAREWELL_MAIL_TRANSPORT='bogus'" in result.stderr
    assert "worker exited with status" in result.stderr


def test_admin_password_is_generated_once(tmp_path):
    from devstack.stack import local_secrets

    first = local_secrets(tmp_path)
    assert len(first["FAREWELL_ADMIN_PASSWORD"]) >= 12
    assert local_secrets(tmp_path) == first
    assert "FAREWELL_MEMBERPRESS_KEY" not in first  # MemberPress makes its own: copied in
    assert oct((tmp_path / "local.env").stat().st_mode & 0o777) == "0o600"
