"""The local spool: where an authenticated event waits when Redis cannot take it.

MemberPress never retries on a 5xx and WooCommerce never retries at all, so when Redis is
down the receiver appends the event here (fsync'd) and still answers 202. Any web process
replays the spool once Redis answers again; replay goes through the normal intake, whose
dedupe makes a line submitted twice count once.

Files, all in one folder:
    spool.jsonl             appended to, one event per line, under an exclusive flock
    claimed-<pid>-<ns>.jsonl  taken by one replayer with an atomic rename
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from worker.events import Event

log = logging.getLogger(__name__)

ACTIVE = "spool.jsonl"
CLAIM_PREFIX = "claimed-"
# A claimed file untouched this long belongs to a replayer that died: take it over.
ORPHAN_AFTER = 60.0


# Claimed files this process is replaying right now (several threads may replay at once).
_active: set[str] = set()
_active_lock = threading.Lock()


def _rename_claimed(path: Path, target: Path) -> None:
    with _active_lock:
        _active.add(target.name)  # before the file exists under that name
    try:
        os.rename(path, target)
    except BaseException:
        with _active_lock:
            _active.discard(target.name)
        raise


def _abandoned(path: Path) -> bool:
    """A claimed file whose replayer is gone (its process died: SIGKILL, OOM, restart) or is
    this very process (a replay that stopped when Redis failed): take it now, not after
    ORPHAN_AFTER. Replayers sharing a spool folder run on one host, so the pid is theirs."""
    try:
        pid = int(path.name[len(CLAIM_PREFIX) :].split("-", 1)[0])
    except ValueError:
        return False
    if pid == os.getpid():
        with _active_lock:
            return path.name not in _active
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False


@dataclass(frozen=True)
class ReplayResult:
    replayed: int = 0
    duplicates: int = 0
    unreadable: int = 0


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def active(self) -> Path:
        return self.directory / ACTIVE

    def append(self, event: Event) -> None:
        """Durably append one event; returns only once it is on disk."""
        self.directory.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(event.to_dict(), separators=(",", ":")) + "\n").encode()
        while True:
            fd = os.open(self.active, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # A replayer may have renamed the file while we waited for the lock.
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.active).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    os.write(fd, line)
                    os.fsync(fd)
                    return
            finally:
                os.close(fd)

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(
            p
            for p in self.directory.iterdir()
            if p.name == ACTIVE or (p.name.startswith(CLAIM_PREFIX) and p.suffix == ".jsonl")
        )

    def backlog(self) -> int:
        """Events waiting (lines in every spool file)."""
        total = 0
        for path in self.files():
            try:
                with path.open("rb") as fh:
                    total += sum(1 for _ in fh)
            except FileNotFoundError:
                continue
        return total

    def _claim(self) -> list[Path]:
        claimed: list[Path] = []
        now = time.time()
        for path in self.files():
            try:
                if path.name == ACTIVE:
                    if path.stat().st_size == 0:
                        continue
                    with path.open("rb") as fh:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                        # Rename only the file we hold the lock on: another replayer may
                        # have renamed it, and a writer created a new one, meanwhile.
                        if os.fstat(fh.fileno()).st_ino != os.stat(path).st_ino:
                            continue
                        target = self._claim_name()
                        _rename_claimed(path, target)
                elif _abandoned(path) or now - path.stat().st_mtime > ORPHAN_AFTER:
                    target = self._claim_name()
                    _rename_claimed(path, target)
                else:
                    continue
            except FileNotFoundError:
                continue  # another replayer took it first
            claimed.append(target)
        return claimed

    def _claim_name(self) -> Path:  # claimed-<pid>-<ns>.jsonl: the pid tells who holds it
        return self.directory / f"{CLAIM_PREFIX}{os.getpid()}-{time.time_ns()}.jsonl"

    def replay(self, submit: Callable[[Event], bool]) -> ReplayResult:
        """Submit every spooled event. `submit` returns True for new, False for duplicate,
        and raises when Redis is unavailable: the rest then stays claimed for later."""
        replayed = duplicates = unreadable = 0
        claimed = self._claim()
        try:
            for path in claimed:
                r, d, u = self._replay_file(path, submit)
                replayed, duplicates, unreadable = replayed + r, duplicates + d, unreadable + u
        finally:
            with _active_lock:
                _active.difference_update(p.name for p in claimed)
        return ReplayResult(replayed, duplicates, unreadable)

    def _replay_file(self, path: Path, submit: Callable[[Event], bool]) -> tuple[int, int, int]:
        replayed = duplicates = unreadable = 0
        try:
            with path.open("rb") as fh:
                lines = fh.readlines()
            for raw in lines:
                try:
                    event = Event.from_dict(json.loads(raw))
                except (ValueError, KeyError, TypeError):
                    # Only a write torn by a crash, which was never acknowledged.
                    unreadable += 1
                    log.error("spool %s: unreadable line skipped", path.name)
                    continue
                if submit(event):
                    replayed += 1
                else:
                    duplicates += 1
                os.utime(path)  # still alive: not an orphan
            path.unlink()
        except FileNotFoundError:
            # Another replayer took the file over (it judged us dead or slow): it replays
            # every line again, and dedupe makes the ones we already submitted count once.
            log.warning("spool %s: taken over by another replayer", path.name)
        return replayed, duplicates, unreadable
