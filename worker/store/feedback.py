"""Survey answers, one per sequence."""

from __future__ import annotations

from redis import Redis

from .keys import feedback_key
from .records import Feedback


class Feedbacks:
    redis: Redis

    def save_feedback(self, feedback: Feedback) -> bool:
        """Store or replace the answer for a sequence; True if it is the first answer."""
        key = feedback_key(feedback.sequence_id)
        pipe = self.redis.pipeline()
        pipe.exists(key)
        pipe.hset(
            key,
            mapping={
                "reason": feedback.reason,
                "comment": feedback.comment,
                "no_email": "1" if feedback.no_email else "0",
                "at": repr(feedback.at),
            },
        )
        existed, _ = pipe.execute()
        return not existed

    def load_feedback(self, sequence_id: str) -> Feedback | None:
        data = self.redis.hgetall(feedback_key(sequence_id))
        return Feedback.from_hash(sequence_id, data) if data else None

    def load_many_feedback(self, sequence_ids: list[str]) -> dict[str, Feedback]:
        """The answers among these sequences, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in sequence_ids:
            pipe.hgetall(feedback_key(sid))
        return {
            sid: Feedback.from_hash(sid, data)
            for sid, data in zip(sequence_ids, pipe.execute(), strict=True)
            if data
        }
