"""`python -m worker` as several worker processes, one per CPU unless
FAREWELL_WORKER_PROCESSES says otherwise.

Delivery is CPU-bound in Python (rendering, MIME, Redis and SMTP clients) and one process
uses one core, so the Procfile's single `worker` line runs a small supervisor that keeps
that many ordinary worker processes going: each one the whole single-process worker (its
own heartbeat, sweep and RQ SimpleWorker; RQ's scheduler lock picks one scheduler).

- SIGTERM or SIGINT to the supervisor is passed on once to every process, which finishes
  its job and exits (a warm shutdown); the supervisor exits when they all have. A platform
  that signals every process itself (Heroku does) sends the processes a second SIGTERM
  within the same second, which RQ ignores rather than stopping cold.
- A process that dies is replaced (at most once per RESTART_PAUSE per slot); its
  unfinished job and batch are put back by the other processes' sweep.
- A process that refuses to start (status 2: bad configuration) stops them all, and the
  supervisor exits 2, as the single process would.
- The processes run in sessions of their own, so a terminal's Ctrl-C reaches them only
  through the supervisor, once; each one stops by itself if the supervisor disappears.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from . import liveness

log = logging.getLogger("worker")

PARENT_ENV = "FAREWELL_WORKER_PARENT"  # set in each process the supervisor starts
RESTART_PAUSE = 5.0
REFUSED = 2  # python -m worker's status for a configuration it refuses


def default_processes() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def supervise(count: int) -> int:
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    env = {**os.environ, PARENT_ENV: str(os.getpid())}

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "worker"], env=env, start_new_session=True)

    procs = [start() for _ in range(count)]
    started = [time.monotonic()] * count
    log.info("supervising %d worker processes: %s", count, ", ".join(str(p.pid) for p in procs))
    status = 0
    while not stopping.wait(0.5):
        for slot, proc in enumerate(procs):
            code = proc.poll()
            if code is None:
                continue
            if code == REFUSED:
                log.error("worker process %d refused to start; stopping", proc.pid)
                status = REFUSED
                stopping.set()
                break
            if time.monotonic() - started[slot] < RESTART_PAUSE:
                continue  # replaced on a later pass: no restart loop
            log.warning("worker process %d exited (status %s); starting another", proc.pid, code)
            procs[slot] = start()
            started[slot] = time.monotonic()
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait()
    return status


def watch_parent(stop: threading.Event) -> None:
    """In a process the supervisor started: stop (warm) once the supervisor is gone."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    while not stop.wait(2.0):
        if os.getppid() != int(parent):
            if not liveness.stopping.is_set():  # a second SIGTERM would make RQ stop cold
                log.warning("worker supervisor %s is gone; stopping", parent)
                os.kill(os.getpid(), signal.SIGTERM)
            return
