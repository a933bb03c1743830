"""Sequences (a cancellation's follow-ups): starting one under the member's cooldown,
reading it back, and stopping it when the member comes back."""

from __future__ import annotations

import json
from collections.abc import Mapping

from redis import Redis

from .keys import member_sequences_key, sequence_key
from .records import Sequence, sequence_from
from .scripts import Scripts, Started


def planned_steps(redis: Redis, sequence_id: str) -> dict[str, str]:
    """step id -> stream, as planned when the sequence started."""
    raw = redis.hget(sequence_key(sequence_id), "plan")
    return json.loads(raw) if raw else {}


class Sequences:
    redis: Redis
    _lua: Scripts

    def start_sequence(self, seq: Sequence, plan: Mapping[str, str], cooldown: int) -> Started:
        """Take the member's cooldown (`cooldown` seconds) for this sequence and create the
        sequence, in one atomic step. Returns ("created", ""), ("exists", its status) for a
        replayed cancellation, or ("cooldown", the id of the sequence that holds it).

        `plan` maps each planned step to its stream, so pending steps can be found and
        cancelled later without the playbook (the web side has none)."""
        fields = {
            "plan": json.dumps(dict(plan)),
            "member_key": seq.member_key,
            "event_id": seq.event_id,
            "membership_id": seq.membership_id,
            "membership_title": seq.membership_title,
            "locale": seq.locale,
            "started_at": repr(seq.started_at),
            "access_ends_at": seq.access_ends_at,
            "status": seq.status,
            "acted_at": repr(seq.acted_at or seq.started_at),
            "note": seq.note,
        }
        return self._lua.start(seq.id, seq.member_key, cooldown, fields)

    def load_sequence(self, sequence_id: str) -> Sequence | None:
        return sequence_from(sequence_id, self.redis.hgetall(sequence_key(sequence_id)))

    def sequence_member_key(self, sequence_id: str) -> str | None:
        return self.redis.hget(sequence_key(sequence_id), "member_key")

    def planned_steps(self, sequence_id: str) -> dict[str, str]:
        """step id -> stream, as planned when the sequence started."""
        return planned_steps(self.redis, sequence_id)

    def member_sequence_ids(self, key: str) -> list[str]:
        return sorted(self.redis.smembers(member_sequences_key(key)))

    def stop_sequence(self, sequence_id: str, outcome: str, at: float) -> bool:
        """Stop an active sequence with an outcome ("came_back", "won_back"); False if it
        was not active."""
        key = sequence_key(sequence_id)
        if self.redis.hget(key, "status") != "active":
            return False
        mapping = {"status": "stopped", "outcome": outcome, "came_back_at": repr(at)}
        self.redis.hset(key, mapping=mapping)
        return True
