"""`make run`: the whole service in one terminal; Ctrl-C stops everything cleanly."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import quote

from hooks.sources import SOURCES
from worker.settings import env_name

from .stack import ROOT, Stack

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


def main() -> int:
    var_dir = Path(os.environ.get("FAREWELL_VAR_DIR") or ROOT / "var")
    stack = Stack(var_dir=var_dir, port=int(os.environ.get("PORT") or DEFAULT_PORT))
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        stack.start()
        stack.wait_ready()
    except RuntimeError as exc:
        print(f"farewell: {exc}", file=sys.stderr)
        stack.stop()
        return 1
    env = stack.env
    key = env.get("FAREWELL_MEMBERPRESS_KEY", "")
    redis_url = env["REDIS_URL"].split("@")[-1]  # never print a password
    redis_note = (
        f"{redis_url} (embedded, data in {stack.redis.data_dir})" if stack.redis else redis_url
    )
    outbox = env.get("FAREWELL_OUTBOX_DIR", "")
    try:
        outbox = str(Path(outbox).relative_to(ROOT))
    except ValueError:
        pass
    others = other_source_lines(env)
    transport = env.get("FAREWELL_MAIL_TRANSPORT", "outbox")
    print(
        "\nFarewell is running. Paste these into MemberPress > Developer Tools > Webhooks:\n"
        f"  URL: {env['FAREWELL_BASE_URL'].rstrip('/')}/hooks/memberpress\n"
        f"  Key: {key}   (header MEMBERPRESS-WEBHOOK-KEY, or ?key=)\n"
        + ("Other sources enabled:\n" + "".join(others) if others else "")
        + f"Redis: {redis_note}.  Mail transport: {transport} (outbox: {outbox}).\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
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
