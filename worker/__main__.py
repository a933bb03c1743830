"""`python -m worker`: check the configuration, then run the RQ worker with its scheduler.

A non-forking SimpleWorker: templates stay compiled and the SMTP connection or HTTP session
stays open across jobs, instead of being rebuilt in a fork for every email.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from rq import SimpleWorker

from .intake import requeue_stale
from .mail.errors import MailConfigError
from .playbook import PlaybookError
from .render import TemplateMissing
from .runtime import runtime
from .settings import SettingsError

log = logging.getLogger("worker")
SWEEP_INTERVAL = 30.0


def _sweep_forever(stop: threading.Event) -> None:
    rt = runtime()
    while not stop.wait(SWEEP_INTERVAL):
        try:
            requeue_stale(rt.store, rt.queue)
        except Exception:  # a sweep must never kill the worker; the next one tries again
            log.exception("pending-event sweep failed")


def lower_priority(increment: int) -> None:
    """Yield the CPU to the web process when both share a box: webhook replies are what
    a plugin waits for (and MemberPress never retries a 5xx); an email may wait seconds."""
    if increment > 0:
        os.nice(increment)


def preflight() -> None:
    """Fail at start-up, not on the first cancellation."""
    rt = runtime()
    rt.settings.require_secret_key()
    rt.playbook  # noqa: B018 - loads and validates
    rt.reasons  # noqa: B018
    rt.transport  # noqa: B018
    rt.renderer  # noqa: B018


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        preflight()
    except (SettingsError, PlaybookError, TemplateMissing, MailConfigError, ValueError) as exc:
        log.error("refusing to start: %s", exc)
        return 2
    rt = runtime()
    lower_priority(rt.settings.worker_nice)
    stop = threading.Event()
    threading.Thread(target=_sweep_forever, args=(stop,), name="sweep", daemon=True).start()
    worker = SimpleWorker(
        [rt.queue], connection=rt.queue.connection, serializer=rt.queue.serializer
    )
    try:
        worker.work(with_scheduler=True)
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
