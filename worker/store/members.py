"""Members: what each event records about its member, reading them back, and erasure."""

from __future__ import annotations

import json
from collections.abc import Mapping

from redis import Redis

from ..events import Member
from .keys import (
    SUPPRESSED_KEY,
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
from .records import member_fields, member_from
from .sequences import planned_steps


class Members:
    redis: Redis

    def note_member_event(
        self,
        member: Member,
        event_id: str,
        fields: Mapping[str, str] | None,
        paused: tuple[str, bool] | None = None,
    ) -> str | None:
        """Everything an event records about its member, in one round trip: the event in
        the member's index (for erasure), the member saved with `fields` (None saves
        nothing: an erasure), and `paused` = (subscription, paused or not). Returns the
        member's came_back_at as it was before."""
        key = member.key
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(member_hash_key(key), "came_back_at")
        pipe.sadd(member_events_key(key), event_id)
        if fields is not None:
            pipe.hset(member_hash_key(key), mapping=member_fields(member, fields))
        if paused is not None:
            subscription, is_paused = paused
            if is_paused:
                pipe.sadd(member_paused_key(key), subscription)
            else:
                pipe.srem(member_paused_key(key), subscription)
        return pipe.execute()[0]

    def load_member(self, key: str) -> Member | None:
        return member_from(self.redis.hgetall(member_hash_key(key)))

    def member_field(self, key: str, name: str) -> str | None:
        return self.redis.hget(member_hash_key(key), name)

    def member_emails(self, member_keys: list[str]) -> dict[str, str]:
        """Current address per member key; erased members are absent."""
        pipe = self.redis.pipeline(transaction=False)
        for key in member_keys:
            pipe.hget(member_hash_key(key), "email")
        return {key: email for key, email in zip(member_keys, pipe.execute(), strict=True) if email}

    def member_names(self, member_keys: list[str]) -> dict[str, str]:
        """ "First Last" per member key, where the member gave a name (erased: absent)."""
        pipe = self.redis.pipeline(transaction=False)
        for key in member_keys:
            pipe.hmget(member_hash_key(key), ["first_name", "last_name"])
        return {
            key: name
            for key, parts in zip(member_keys, pipe.execute(), strict=True)
            if (name := " ".join(p for p in parts if p).strip())
        }

    def erase_member(self, key: str) -> int:
        """Delete everything stored about a member except the suppression entry (keyed by a
        hash of the address), whose masked-address hint is dropped. Returns keys deleted."""
        r = self.redis
        sequence_ids = r.smembers(member_sequences_key(key))
        doomed = [
            member_hash_key(key),
            member_sequences_key(key),
            member_events_key(key),
            member_paused_key(key),
            cooldown_key(key),
        ]
        doomed += [event_key(e) for e in r.smembers(member_events_key(key))]
        for sid in sequence_ids:
            doomed += [sequence_key(sid), sequence_claims_key(sid), feedback_key(sid)]
            # The claims set names every step that took a claim; the plan, every step.
            steps = set(r.smembers(sequence_claims_key(sid))) | set(planned_steps(r, sid))
            doomed += [send_claim_key(sid, step) for step in steps]
        deleted = r.delete(*doomed)
        for given in r.scan_iter(match=pool_key("*", "given"), count=500):
            r.hdel(given, key)
        raw = r.hget(SUPPRESSED_KEY, key)
        if raw:
            entry = json.loads(raw)
            entry["hint"] = ""
            r.hset(SUPPRESSED_KEY, key, json.dumps(entry))
        return int(deleted)
