"""The retention period (FAREWELL_RETENTION_DAYS): personal data older than it is erased,
the counts insights show are kept anonymously (worker/personal_data.py says how).

The worker's sweep thread calls `run_due` every few seconds; at most one process runs a
pass per RETENTION_INTERVAL (a Redis lock), and a pass handles at most `batch` members and
records, remembering where it stopped (a SCAN cursor over member hashes, a time watermark
over cancellation records) in one hash. Every step is idempotent: a pass cut short by a
crash is simply done again.

What is old:
- a member whose last event is older than the period: all of them (address, names,
  events, indexes), their cancellations and sequences anonymized;
- a cancellation older than the period, even of a member still around: its link to the
  member, its event record and its survey comment;
- send log entries older than the period;
- a subscription's last known state and payment (worker/subscription_state.py), keyed by
  a hash of the subscription id, when neither changed in the period.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from rq import Queue

from . import personal_data
from .events import member_key
from .sequences import cancel_steps, erase_member
from .store import PREFIX, SENDLOG_KEY, Store, member_hash_key

log = logging.getLogger(__name__)

DAY = 24 * 3600
RETENTION_INTERVAL = 60  # seconds between passes, over all worker processes
RETENTION_BATCH = 500  # members and records per pass
STATE_KEY = f"{PREFIX}retention"  # hash: members_cursor, records_through, states_cursor
LOCK_KEY = f"{PREFIX}retention:lock"  # held for RETENTION_INTERVAL by the process that ran
_MEMBER_PREFIX = member_hash_key("")


@dataclass(frozen=True)
class Pass:
    members: int  # members retired
    records: int  # cancellation records anonymized
    send_log: int  # send log entries dropped
    cycle_done: bool  # the member scan went round the whole keyspace


def cutoff(retention_days: int, now: float) -> float | None:
    """Data older than this (epoch seconds) is past retention; None keeps it forever."""
    return now - retention_days * DAY if retention_days > 0 else None


def is_past(last_event_at: str | None, limit: float) -> bool:
    """A member's `last_event_at` (ISO date-time) is before the cutoff; unknown is kept."""
    if not last_event_at:
        return False
    try:
        return datetime.fromisoformat(last_event_at).timestamp() < limit
    except ValueError:
        return False


def run_due(
    store: Store, queue: Queue, retention_days: int, now: float | None = None
) -> Pass | None:
    """A pass if none ran in the last RETENTION_INTERVAL (in any process), else None."""
    if retention_days <= 0:
        return None
    if not store.redis.set(LOCK_KEY, "1", nx=True, ex=RETENTION_INTERVAL):
        return None
    result = sweep(store, queue, retention_days, now)
    if result.members or result.records or result.send_log:
        log.info(
            "retention: %d member(s) erased, %d record(s) anonymized, %d send log entries "
            "dropped (older than %d days)",
            result.members,
            result.records,
            result.send_log,
            retention_days,
        )
    return result


def sweep(
    store: Store,
    queue: Queue,
    retention_days: int,
    now: float | None = None,
    batch: int = RETENTION_BATCH,
) -> Pass:
    """One bounded pass: erase what is past retention, keep the counts."""
    limit = cutoff(retention_days, time.time() if now is None else now)
    if limit is None:
        return Pass(0, 0, 0, True)
    r = store.redis
    members, cycle_done = _retire_members(store, queue, limit, batch)
    records = _anonymize_records(store, queue, limit, batch)
    _forget_old_states(r, limit, batch)
    dropped = int(r.xtrim(SENDLOG_KEY, minid=f"{int(limit * 1000)}-0"))
    return Pass(members, records, dropped, cycle_done)


def _retire_members(store: Store, queue: Queue, limit: float, batch: int) -> tuple[int, bool]:
    r = store.redis
    cursor = int(r.hget(STATE_KEY, "members_cursor") or 0)
    cursor, names = r.scan(cursor, match=_MEMBER_PREFIX + "*", count=batch)
    retired = 0
    for name in names:
        key = name[len(_MEMBER_PREFIX) :]
        if ":" in key or not is_past(r.hget(name, "last_event_at"), limit):
            continue  # an index of the member (…:events), or a member still around
        _cancel_pending(store, queue, store.member_sequence_ids(key))
        personal_data.retire_member(r, key)
        retired += 1
    r.hset(STATE_KEY, "members_cursor", cursor)
    return retired, cursor == 0


def _anonymize_records(store: Store, queue: Queue, limit: float, batch: int) -> int:
    r = store.redis
    through = r.hget(STATE_KEY, "records_through")
    rows = personal_data.old_cancellations(r, float(through) if through else None, limit, batch)
    for event_id, _at in rows:
        _cancel_pending(store, queue, [event_id])
        personal_data.anonymize_record(r, event_id)
    if rows:
        r.hset(STATE_KEY, "records_through", repr(rows[-1][1]))
    return len(rows)


def _forget_old_states(r: Redis, limit: float, batch: int) -> int:
    """Subscription states (worker/subscription_state.py) neither changed nor paid since the
    cutoff: a plugin repeating a state that old is not to be expected."""
    cursor = int(r.hget(STATE_KEY, "states_cursor") or 0)
    cursor, names = r.scan(cursor, match=f"{PREFIX}substate:*", count=batch)
    dropped = 0
    for name in names:
        at = r.hmget(name, ["changed_at", "paid_at"])
        if max(float(v or 0) for v in at) < limit:
            dropped += int(r.delete(name))
    r.hset(STATE_KEY, "states_cursor", cursor)
    return dropped


def _cancel_pending(store: Store, queue: Queue, sequence_ids: list[str]) -> None:
    for sid in sequence_ids:
        cancel_steps(queue, sid, store.planned_steps(sid))


def forget(store: Store, queue: Queue, email: str) -> tuple[int, int]:
    """A person's request to be forgotten (`privacy forget`): the erasure a
    `member-deleted` event does, plus the address's events no worker handled yet.
    Returns (pending steps cancelled, keys deleted)."""
    deleted = personal_data.forget_unhandled_events(store.redis, email)
    cancelled, erased = erase_member(store, queue, member_key(email))
    return cancelled, erased + deleted
