"""A/B variants: which sequences got which variant of a step (written with the send, in
sends.py), and what became of them, for the dashboard (worker/variants.py)."""

from __future__ import annotations

from redis import Redis

from .keys import feedback_key, sequence_key, variant_sequences_key


class Variants:
    redis: Redis

    def variant_outcomes(self, step: str, template: str) -> tuple[int, int, int]:
        """(sent, answered the survey, came back) over the sequences sent this variant.
        Sequences erased since are left out."""
        ids = sorted(self.redis.smembers(variant_sequences_key(step, template)))
        if not ids:
            return 0, 0, 0
        pipe = self.redis.pipeline(transaction=False)
        for sequence_id in ids:
            pipe.hget(sequence_key(sequence_id), "status")
            pipe.hget(sequence_key(sequence_id), "outcome")
            pipe.exists(feedback_key(sequence_id))
        replies = pipe.execute()
        sent = answered = came_back = 0
        for n in range(len(ids)):
            status, outcome, feedback = replies[3 * n : 3 * n + 3]
            if status is None or status == "erased":
                continue
            sent += 1
            answered += 1 if feedback else 0
            came_back += 1 if outcome in ("came_back", "won_back") else 0
        return sent, answered, came_back
