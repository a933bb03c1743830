"""`make run`: the whole service in one terminal; Ctrl-C stops everything cleanly."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import quote

import redis

from hooks.sources import SOURCES
from worker.settings import env_name
from worker.webhook_log import MEMBERPRESS_KEY

from .stack import LOCAL_ENV, ROOT, Stack, safe_url

DEFAULT_PORT = 5000
# Where each source's secret goes ({var}: the variable that holds it and enables it).
SECRET_HINTS = {
    "woocommerce": "paste {var} as the webhook's Secret",
    "pmpro": "the key from {var} is part of the URL",
    "stripe": "{var} holds the endpoint's signing secret",
    "standard": "sign with {var}",
}


def other_source_lines(env: dict[str, str]) -> list[str]:
    """One line per enabled non-MemberPress source: its webhook URL (secrets not printed,
    except PMPro's key, which its add-on can only take in the URL)."""
    base = env["FAREWELL_BASE_URL"].rstrip("/")
    lines = []
    for name, module in SOURCES.items():
        variable = env_name(module.SECRET_SETTING)
        secret = env.get(variable, "")
        if name == "memberpress" or not secret:
            continue
        url = f"{base}/hooks/{name}" + (f"?key={quote(secret, safe='')}" if name == "pmpro" else "")
        hint = SECRET_HINTS.get(name, "secret in {var}").format(var=variable)
        lines.append(f"  {name}: {url}   ({hint})\n")
    return lines


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def memberpress_lines(env: dict[str, str], stored_key: bool, local_env: str, base: str) -> str:
    """MemberPress's add-on generates its key and shows it read-only: the owner copies it
    into Farewell, never the reverse."""
    url = f"{base}/hooks/memberpress"
    if env.get("FAREWELL_MEMBERPRESS_KEY"):
        where = f"FAREWELL_MEMBERPRESS_KEY (environment or {local_env})"
    elif stored_key:
        where = "the Connections page"
    else:
        return (
            "MemberPress: not connected yet. In MemberPress > Developer Tools > Webhooks add\n"
            f"  URL: {url}\n"
            "  then copy the key MemberPress shows into Farewell: paste it on\n"
            f"  {base}/admin/connections, or put FAREWELL_MEMBERPRESS_KEY=<key> in\n"
            f"  {local_env} and restart.\n"
        )
    return (
        f"MemberPress: connected, key from {where}.\n"
        f"  URL in MemberPress > Developer Tools > Webhooks: {url}\n"
    )


def banner(stack: Stack, var_dir: Path) -> str:
    env = stack.env
    base = env["FAREWELL_BASE_URL"].rstrip("/")
    local_env = _shown(var_dir / LOCAL_ENV)
    redis_url = safe_url(env["REDIS_URL"])  # never print a password
    redis_note = (
        f"{redis_url} (embedded, data in {_shown(stack.redis.data_dir)})"
        if stack.redis
        else redis_url
    )
    outbox = _shown(Path(env.get("FAREWELL_OUTBOX_DIR", "")))
    transport = env.get("FAREWELL_MAIL_TRANSPORT", "outbox")
    password_at = (
        f"FAREWELL_ADMIN_PASSWORD in {local_env}"
        if stack.base_env.get("FAREWELL_ADMIN_PASSWORD") is None
        else "your FAREWELL_ADMIN_PASSWORD"
    )
    others = other_source_lines(env)
    return (
        f"\nFarewell is running at {base}\n"
        f"Admin: {base}/admin   (user admin, password: {password_at})\n"
        f"Connections (what each plugin delivered): {base}/admin/connections\n"
        + memberpress_lines(env, stored_memberpress_key(env["REDIS_URL"]), local_env, base)
        + ("Other sources enabled:\n" + "".join(others) if others else "")
        + f"Redis: {redis_note}.  Mail transport: {transport} (outbox: {outbox}).\n"
        "Commands: ./farewell --help   (e.g. ./farewell connections, ./farewell report)\n"
        "Press Ctrl-C to stop.\n"
    )


def stored_memberpress_key(redis_url: str) -> bool:
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.exists(MEMBERPRESS_KEY))
    except redis.RedisError:
        return False
    finally:
        client.close()


def main() -> int:
    var_dir = Path(os.environ.get("FAREWELL_VAR_DIR") or ROOT / "var")
    stack = Stack(var_dir=var_dir, port=int(os.environ.get("PORT") or DEFAULT_PORT))
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    # SIGHUP: the terminal was closed. The children run in sessions of their own (so one
    # Ctrl-C does not reach them before we stop them in order), so only we can stop them.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    try:
        stack.start()
        stack.wait_ready()
    except RuntimeError as exc:
        print(f"farewell: {exc}", file=sys.stderr)
        stack.stop()
        return 1
    print(banner(stack, var_dir), flush=True)
    status = 0
    while not stopping:
        try:
            stack.check_alive()
        except RuntimeError as exc:
            print(f"farewell: {exc}; stopping everything", file=sys.stderr)
            status = 1
            break
        time.sleep(0.5)
    print("farewell: stopping...", flush=True)
    stack.stop()
    print("farewell: stopped.", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
