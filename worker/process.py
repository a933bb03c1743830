"""`python -m worker`: check the configuration, then run the RQ worker with its scheduler;
with more than one worker process (the default on a multi-core box), worker/pool.py
supervises that many of these.

A non-forking SimpleWorker: templates stay compiled and the SMTP connection or HTTP session
stays open across jobs, instead of being rebuilt in a fork for every email.

Around it: a heartbeat (worker/liveness.py), a sweep that re-queues accepted events that
never reached the queue and jobs whose worker died (and, once a minute over all processes,
erases personal data past its retention period: worker/retention.py), and a loop that
outlives a Redis outage (RQ's worker quits on some Redis errors; we wait for Redis and
start a new one).
SIGTERM or SIGINT is a warm shutdown: the current job finishes, then the process exits 0.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from redis.exceptions import RedisError
from rq.job import Job

from . import batch, digest, liveness, logs, pool, retention, rq_seam, safety
from .compliance import require_postal_address
from .intake import requeue_stale
from .mail.errors import MailConfigError
from .playbook import PlaybookError
from .recovery import reclaim_abandoned, release_due_jobs
from .redis_policy import check_at_start
from .render import TemplateMissing
from .runtime import runtime
from .settings import SettingsError
from .template_check import check_email, require_valid_templates

log = logging.getLogger("worker")
SWEEP_INTERVAL = 5.0  # re-queue jobs of dead workers within ALIVE_TTL + this
STALE_PENDING_AFTER = 60.0  # an accepted event with no job this long was never enqueued
MAINTENANCE_INTERVAL = 60  # RQ's own registry cleanup (default: 10 minutes)
_EVENT_ID = re.compile(r"^[a-z0-9_]+-[0-9a-f]{24}$")


class FarewellWorker(rq_seam.Worker):
    """RQ's SimpleWorker plus: an event id on every log line of a job, job outcomes counted
    in /metrics, and a record of whether a stop was asked for (vs. a lost Redis)."""

    stop_requested = False

    def request_stop(self, signum, frame):
        self.stop_requested = True
        liveness.stopping.set()
        super().request_stop(signum, frame)

    def stop_before_work(self) -> None:
        """A stop that arrived before RQ's own signal handlers were installed (while it
        started up): its loop then ends before taking a job."""
        self.stop_requested = True
        super().stop_before_work()

    def around_job(self, job: Job, run: Callable[[], bool]) -> bool:
        first = job.args[0] if job.args else None
        event_id = first if isinstance(first, str) and _EVENT_ID.match(first) else None
        with logs.event_context(event_id):
            ok = run()
        name = (job.func_name or "").rsplit(".", 1)[-1]
        runtime().store.count("farewell_jobs_total", job=name, outcome="ok" if ok else "failed")
        return ok


def _sweep_forever(stop: threading.Event) -> None:
    rt = runtime()
    while not stop.wait(SWEEP_INTERVAL):
        try:
            reclaim_abandoned(rt.queue)
            batch.recover_dead(rt.queue)
            release_due_jobs(rt.queue)
            requeue_stale(rt.store, rt.queue, older_than=STALE_PENDING_AFTER)
            retention.run_due(rt.store, rt.queue, rt.settings.retention_days)  # once a minute
            if not _remembered.is_set():
                _remember_templates()
            safety.recheck(rt.renderer, _sample_check)
        except RedisError:
            continue  # Redis is down; the next sweep tries again
        except Exception:  # a sweep must never kill the worker; the next one tries again
            log.exception("sweep failed")


def _sample_check(html: str, text: str, locale: str, membership_id: str | None) -> None:
    """Raise unless the email passes the template check's renders (the sweep's recheck)."""
    rt = runtime()
    report = check_email(
        rt.settings,
        rt.playbook,
        rt.reasons,
        rt.renderer,
        html,
        text,
        locale=locale,
        membership_id=membership_id,
    )
    if not report.ok:
        raise ValueError(str(report.errors[0]))


def lower_priority(increment: int) -> None:
    """Yield the CPU to the web process when both share a box: webhook replies are what
    a plugin waits for (and MemberPress never retries a 5xx); an email may wait seconds."""
    if increment > 0:
        os.nice(increment)


def preflight() -> None:
    """Fail at start-up, not on the first cancellation."""
    rt = runtime()
    rt.settings.require_secret_key()
    rt.transport  # noqa: B018 - the settings' own errors first (an unknown transport, say)
    rt.playbook  # noqa: B018 - loads and validates
    require_postal_address(rt.settings, rt.playbook)
    rt.reasons  # noqa: B018
    rt.renderer  # noqa: B018
    # Render every email with sample data: a broken template must stop the start, not a send.
    require_valid_templates(rt.settings, rt.playbook, rt.reasons)
    check_at_start(rt.store.redis, rt.settings.allow_evicting_redis)
    _remember_templates()


_remembered = threading.Event()


def _remember_templates() -> None:
    """The set just passed the check, so every email's files are a version that renders:
    the safety net's first one. Without Redis yet, the sweep does it once Redis answers."""
    try:
        safety.remember_all(runtime().renderer)
    except RedisError:
        return
    _remembered.set()


def _stop_on_signals(stopping: threading.Event, starting: list[FarewellWorker]) -> None:
    """Our handlers while no RQ worker loop has its own: between workers, and while one
    starts up (`starting`), when a stop would otherwise be lost."""

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        liveness.stopping.set()
        for worker in starting:
            worker.stop_before_work()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _wait_for_redis(stopping: threading.Event) -> None:
    delay = 0.5
    while not stopping.is_set():
        try:
            runtime().queue.connection.ping()
            return
        except RedisError:
            stopping.wait(delay)
            delay = min(delay * 2, 5.0)


def main() -> int:
    try:
        rt = runtime()
    except SettingsError as exc:
        logging.basicConfig(format=logs.TEXT_FORMAT)
        log.error("refusing to start: %s", exc)
        return 2
    logs.configure(rt.settings)
    try:
        preflight()
    except (SettingsError, PlaybookError, TemplateMissing, MailConfigError, ValueError) as exc:
        log.error("refusing to start: %s", exc)
        return 2
    processes = rt.settings.worker_processes or pool.default_processes()
    if processes > 1 and not os.environ.get(pool.PARENT_ENV):
        rt.close()
        return pool.supervise(processes)
    lower_priority(rt.settings.worker_nice)
    stopping = threading.Event()
    background = threading.Event()
    threading.Thread(
        target=liveness.run_heartbeat,
        args=(rt.queue.connection, background),
        name="heartbeat",
        daemon=True,
    ).start()
    threading.Thread(target=_sweep_forever, args=(background,), name="sweep", daemon=True).start()
    threading.Thread(
        target=pool.watch_parent, args=(background,), name="parent", daemon=True
    ).start()
    starting: list[FarewellWorker] = []
    _stop_on_signals(stopping, starting)
    try:
        while not stopping.is_set():
            try:
                worker = FarewellWorker(
                    [rt.queue],
                    connection=rt.queue.connection,
                    serializer=rt.queue.serializer,
                    name=liveness.new_owner_id(),
                    maintenance_interval=MAINTENANCE_INTERVAL,
                )
            except RedisError as exc:  # RQ's worker names its Redis connection when built
                log.warning("Redis unavailable (%s); waiting for it", type(exc).__name__)
                _wait_for_redis(stopping)
                continue
            liveness.set_owner(worker.name)
            starting[:] = [worker]
            if stopping.is_set():
                worker.stop_before_work()
            try:
                liveness.beat(rt.queue.connection, worker.name)
                digest.ensure_scheduled(rt.queue, rt.settings, datetime.now(UTC))
                worker.work(with_scheduler=True)
            except RedisError as exc:
                log.warning("worker lost Redis (%s)", type(exc).__name__)
            starting.clear()
            _stop_on_signals(stopping, starting)  # between RQ workers, ours handle a stop
            if worker.stop_requested:
                break
            log.warning("RQ worker stopped without being asked to; restarting once Redis answers")
            _wait_for_redis(stopping)
            liveness.forget(rt.queue.connection, worker.name)
    finally:
        owner = liveness.owner()
        liveness.set_owner(None)
        background.set()
        if owner:
            liveness.forget(rt.queue.connection, owner)
        rt.close()
    log.info("worker stopped")
    return 0
