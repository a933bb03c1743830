"""Everything Farewell holds about one person, found, exported, erased or anonymized.

Personal data lives under the member's key (worker.events.member_key: a hash of the
address) and under the ids of their events and sequences; see worker/store.py for the
layout. Erasing a member (worker/sequences.py erase_member) deletes what is theirs; the
retention sweep (worker/retention.py) *anonymizes* what insights count instead: the
cancellation record, its sequence's outcome and the survey answer's reason stay, with no
address, no hash of it, no names and no comment.

Redis operations only; which steps to cancel is worker/sequences.py's business.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from redis import Redis

from .events import member_key
from .store import (
    CANCELLATIONS_KEY,
    PENDING_KEY,
    PREFIX,
    SENDLOG_KEY,
    SUPPRESSED_KEY,
    cancellation_key,
    cooldown_key,
    event_key,
    feedback_key,
    member_events_key,
    member_hash_key,
    member_paused_key,
    member_sequences_key,
    pool_key,
    send_claim_key,
    sequence_claims_key,
    sequence_key,
)
from .subscription_state import STATEFUL_SOURCES, state_key

_SCAN = 1000
# A sequence hash keeps what insights and the send-time checks read; the rest goes.
_ANONYMOUS_SEQUENCE_FIELDS = (
    "event_id",
    "membership_id",
    "membership_title",
    "locale",
    "started_at",
    "status",
    "outcome",
    "came_back_at",
    "marketing_sent_at",
)


def export(redis: Redis, email: str) -> dict[str, Any]:
    """Everything stored about the address, as JSON-ready data (`privacy export`)."""
    key = member_key(email)
    sequence_ids = sorted(redis.smembers(member_sequences_key(key)))
    event_ids = sorted(set(redis.smembers(member_events_key(key))))
    events = [_event(redis, eid) for eid in event_ids]
    known = set(event_ids)
    events += [e for e in unhandled_events(redis, email) if e["event_id"] not in known]
    events = [e for e in events if e is not None]
    subscriptions = {e.get("subscription_id") for e in events} | set(
        redis.smembers(member_paused_key(key))
    )
    # A state kept by member (a MemberPress cancellation without data.id): its subject.
    subscriptions |= {(e.get("member") or {}).get("id") for e in events} | {key}
    send_log = _send_log(redis, set(sequence_ids))
    suppression = redis.hget(SUPPRESSED_KEY, key)
    return {
        "address": email,
        "member_key": key,
        "member": redis.hgetall(member_hash_key(key)) or None,
        "paused_subscriptions": sorted(redis.smembers(member_paused_key(key))),
        "cooldown_sequence": redis.get(cooldown_key(key)),
        "events": events,
        "subscription_states": {
            f"{source}:{sub}": state
            for sub in sorted(s for s in subscriptions if s)
            for source in STATEFUL_SOURCES
            if (state := redis.hgetall(state_key(source, sub)))
        },
        "cancellations": [
            {"event_id": eid, **data}
            for eid in event_ids
            if (data := redis.hgetall(cancellation_key(eid)))
        ],
        "sequences": [_sequence(redis, sid, send_log.get(sid, [])) for sid in sequence_ids],
        "suppression": json.loads(suppression) if suppression else None,
        "incentive_codes": {
            given.removeprefix(PREFIX + "pool:").removesuffix(":given"): code
            for given in redis.scan_iter(match=pool_key("*", "given"), count=_SCAN)
            if (code := redis.hget(given, key))
        },
    }


def unhandled_events(redis: Redis, email: str) -> list[dict[str, Any]]:
    """Recorded events about the address that no member index lists yet (accepted, not
    yet handled by a worker). Scans every event record: an operator's command only."""
    wanted = email.strip().lower()
    found = []
    for name in redis.scan_iter(match=event_key("*"), count=_SCAN):
        raw = redis.get(name)
        data = json.loads(raw) if raw else {}
        if str(data.get("member", {}).get("email", "")).strip().lower() == wanted:
            found.append(data)
    return found


def forget_unhandled_events(redis: Redis, email: str) -> int:
    """Delete the address's events no worker handled yet (a job finding the record gone
    does nothing), so an erasure is not undone by an event still in the queue."""
    ids = [e["event_id"] for e in unhandled_events(redis, email)]
    if not ids:
        return 0
    redis.zrem(PENDING_KEY, *ids)
    return int(redis.delete(*[event_key(eid) for eid in ids]))


def erase_traces(redis: Redis, key: str, sequence_ids: Iterable[str]) -> int:
    """What an erasure deletes beyond the member's own keys: the hash of the address in
    their cancellation records (the records stay, counted by insights) and the send log
    entries of their sequences. Call before Store.erase_member (it reads the member's
    event index). Returns entries changed."""
    changed = 0
    for eid in redis.smembers(member_events_key(key)):
        changed += _unlink_cancellation(redis, eid)
    sequence_ids = list(sequence_ids)
    # Sends come after their sequence started: read the log from the earliest start only
    # (less a day, for a source whose clock runs ahead of ours).
    starts = [redis.hget(sequence_key(sid), "started_at") for sid in sequence_ids]
    since = min((float(at) - 86400 for at in starts if at), default=0.0)
    doomed = [entry_id for entry_id, _ in _entries_of(redis, set(sequence_ids), since)]
    if doomed:
        changed += int(redis.xdel(SENDLOG_KEY, *doomed))
    return changed


def anonymize_sequence(redis: Redis, sequence_id: str) -> None:
    """Keep a sequence's outcome and survey reason for insights, drop who it was about:
    the member's key, the plan, the answer's comment. A step job finding it stops."""
    skey = sequence_key(sequence_id)
    data = redis.hgetall(skey)
    pipe = redis.pipeline(transaction=True)
    if data:
        kept = {f: data[f] for f in _ANONYMOUS_SEQUENCE_FIELDS if f in data}
        if kept.get("status", "active") == "active":
            kept["status"] = "erased"
        pipe.delete(skey)
        pipe.hset(skey, mapping={**kept, "member_key": ""})
    claims = set(redis.smembers(sequence_claims_key(sequence_id)))
    claims |= set(json.loads(data.get("plan") or "{}")) if data else set()
    pipe.delete(sequence_claims_key(sequence_id), *[send_claim_key(sequence_id, s) for s in claims])
    if redis.exists(feedback_key(sequence_id)):
        pipe.hset(feedback_key(sequence_id), "comment", "")
    pipe.execute()


def anonymize_record(redis: Redis, event_id: str) -> str:
    """Past retention: one cancellation record loses its link to the member (its
    sequence anonymized, its event record deleted). Returns the member key it had ("":
    already anonymous)."""
    key = redis.hget(cancellation_key(event_id), "member_key") or ""
    anonymize_sequence(redis, event_id)  # a cancellation's sequence has the event's id
    pipe = redis.pipeline(transaction=False)
    if key:
        pipe.hset(cancellation_key(event_id), "member_key", "")
        pipe.srem(member_sequences_key(key), event_id)
        pipe.srem(member_events_key(key), event_id)
    pipe.delete(event_key(event_id))
    pipe.execute()
    return key


def retire_member(redis: Redis, key: str) -> int:
    """Past retention: erase the member (address, names, events, indexes, incentive codes,
    the suppression entry's masked hint), anonymizing their cancellations and sequences
    instead of deleting them. The caller cancels pending steps first. Returns keys
    deleted."""
    event_ids = list(redis.smembers(member_events_key(key)))
    for sid in redis.smembers(member_sequences_key(key)):
        anonymize_sequence(redis, sid)
    for eid in event_ids:
        _unlink_cancellation(redis, eid)
    deleted = redis.delete(
        member_hash_key(key),
        member_sequences_key(key),
        member_events_key(key),
        member_paused_key(key),
        cooldown_key(key),
        *[event_key(eid) for eid in event_ids],
    )
    for given in redis.scan_iter(match=pool_key("*", "given"), count=_SCAN):
        redis.hdel(given, key)
    raw = redis.hget(SUPPRESSED_KEY, key)
    if raw:
        redis.hset(SUPPRESSED_KEY, key, json.dumps({**json.loads(raw), "hint": ""}))
    return int(deleted)


def old_cancellations(
    redis: Redis, after: float | None, cutoff: float, limit: int
) -> list[tuple[str, float]]:
    """Cancellation records with after < time <= cutoff, oldest first: `limit` of them,
    plus any sharing the last one's time (so a watermark at that time skips none)."""
    low = "-inf" if after is None else f"({after!r}"
    rows = redis.zrangebyscore(CANCELLATIONS_KEY, low, cutoff, start=0, num=limit, withscores=True)
    if len(rows) == limit:
        last = rows[-1][1]
        rows = [r for r in rows if r[1] < last]
        rows += redis.zrangebyscore(CANCELLATIONS_KEY, last, last, withscores=True)
    return [(str(eid), float(at)) for eid, at in rows]


def _unlink_cancellation(redis: Redis, event_id: str) -> int:
    if not redis.hget(cancellation_key(event_id), "member_key"):
        return 0  # no such record, or anonymous already
    redis.hset(cancellation_key(event_id), "member_key", "")
    return 1


def _event(redis: Redis, event_id: str) -> dict[str, Any] | None:
    raw = redis.get(event_key(event_id))
    return json.loads(raw) if raw else None


def _sequence(redis: Redis, sequence_id: str, send_log: list[dict[str, str]]) -> dict[str, Any]:
    data: dict[str, Any] = dict(redis.hgetall(sequence_key(sequence_id)))
    if "plan" in data:
        data["plan"] = json.loads(data["plan"])
    steps = set(data.get("plan", {})) | set(redis.smembers(sequence_claims_key(sequence_id)))
    feedback = redis.hgetall(feedback_key(sequence_id))
    return {
        "id": sequence_id,
        **data,
        "survey_answer": feedback or None,
        "send_claims": {
            s: claim for s in sorted(steps) if (claim := redis.get(send_claim_key(sequence_id, s)))
        },
        "send_log": send_log,
    }


def _entries_of(
    redis: Redis, sequence_ids: set[str], since: float = 0.0
) -> Iterator[tuple[str, dict[str, str]]]:
    """The send log's entries about these sequences from `since` (epoch seconds) on,
    read in pages (the log holds up to SENDLOG_MAXLEN entries)."""
    if not sequence_ids:
        return
    start = f"{int(since * 1000)}-0" if since > 0 else "-"
    while True:
        page = redis.xrange(SENDLOG_KEY, min=start, count=_SCAN)
        for entry_id, fields in page:
            if fields.get("sequence") in sequence_ids:
                yield entry_id, fields
        if len(page) < _SCAN:
            return
        start = "(" + page[-1][0]


def _send_log(redis: Redis, sequence_ids: set[str]) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for entry_id, fields in _entries_of(redis, sequence_ids):
        found.setdefault(fields["sequence"], []).append({"id": entry_id, **fields})
    return found
