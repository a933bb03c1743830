"""Cancellation records, for insights: one per cancellation, whether or not a sequence
started (cooldown, erased member), so the counts do not depend on what the playbook did."""

from __future__ import annotations

from redis import Redis

from .keys import (
    CANCELLATION_MEMBERSHIPS_KEY,
    CANCELLATIONS_KEY,
    cancellation_key,
    membership_cancellations_key,
    sequence_key,
)
from .records import Cancellation, SequenceOutcome


class Insights:
    redis: Redis

    def record_cancellation(self, record: Cancellation) -> bool:
        """Write the record; False if it existed (a re-run of the same event, which
        writes the same values again). One round trip."""
        key = cancellation_key(record.event_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hsetnx(key, "member_key", record.member_key)
        pipe.hset(
            key,
            mapping={
                "at": repr(record.at),
                "membership_id": record.membership_id,
                "membership_title": record.membership_title,
                "source": record.source,
                "sequence_id": record.sequence_id,
                "mrr": str(record.mrr) if record.mrr is not None else "",
                "currency": record.currency,
            },
        )
        pipe.zadd(CANCELLATIONS_KEY, {record.event_id: record.at})
        if record.membership_id:
            pipe.zadd(
                membership_cancellations_key(record.membership_id), {record.event_id: record.at}
            )
            pipe.hset(
                CANCELLATION_MEMBERSHIPS_KEY,
                record.membership_id,
                record.membership_title or record.membership_id,
            )
        return bool(pipe.execute()[0])

    def load_cancellation(self, event_id: str) -> Cancellation | None:
        data = self.redis.hgetall(cancellation_key(event_id))
        return Cancellation.from_hash(event_id, data) if data and "at" in data else None

    def cancellations(
        self, start: float | None = None, end: float | None = None, membership_id: str = ""
    ) -> list[Cancellation]:
        """Records with start <= time < end (of one membership if given), oldest first."""
        low = "-inf" if start is None else start
        high = "+inf" if end is None else f"({end}"
        index = membership_cancellations_key(membership_id) if membership_id else CANCELLATIONS_KEY
        ids = self.redis.zrangebyscore(index, low, high)
        pipe = self.redis.pipeline(transaction=False)
        for event_id in ids:
            pipe.hgetall(cancellation_key(event_id))
        return [
            Cancellation.from_hash(event_id, data)
            for event_id, data in zip(ids, pipe.execute(), strict=True)
            if data and "at" in data
        ]

    def cancellation_memberships(self) -> dict[str, str]:
        """Every membership that ever had a cancellation: id -> title."""
        return dict(self.redis.hgetall(CANCELLATION_MEMBERSHIPS_KEY))

    def sequence_outcomes(self, sequence_ids: list[str]) -> dict[str, SequenceOutcome]:
        """How each existing sequence ended, reading only those fields (sequences are big)."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in sequence_ids:
            pipe.hmget(
                sequence_key(sid), ["locale", "outcome", "came_back_at", "marketing_sent_at"]
            )
        return {
            sid: SequenceOutcome(
                outcome or "",
                float(came_back_at) if came_back_at else None,
                float(marketing_sent_at) if marketing_sent_at else None,
            )
            for sid, (locale, outcome, came_back_at, marketing_sent_at) in zip(
                sequence_ids, pipe.execute(), strict=True
            )
            if locale is not None
        }
