"""A/B variants: which sequences got which variant of a step (written with the send, in
sends.py), and what became of them, for the dashboard (worker/variants.py)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from redis import Redis

from .keys import (
    cancellation_key,
    feedback_key,
    rejoin_key,
    sequence_key,
    variant_sequences_key,
)


class VariantOutcome(NamedTuple):
    sent: int
    answered: int  # the survey
    came_back: int
    rejoin_clicks: int  # followed this step's rejoin button
    recovered: dict[str, Decimal]  # MRR of the won-back cancellations, per currency


class Variants:
    redis: Redis

    def variant_outcomes(self, step: str, template: str) -> VariantOutcome:
        """What became of the sequences sent this variant, in one round trip. Sequences
        erased since are left out."""
        ids = sorted(self.redis.smembers(variant_sequences_key(step, template)))
        if not ids:
            return VariantOutcome(0, 0, 0, 0, {})
        pipe = self.redis.pipeline(transaction=False)
        for sequence_id in ids:
            pipe.hmget(sequence_key(sequence_id), "status", "outcome")
            pipe.exists(feedback_key(sequence_id))
            pipe.hexists(rejoin_key(sequence_id), step)
            pipe.hmget(cancellation_key(sequence_id), "mrr", "currency")
        replies = pipe.execute()
        sent = answered = came_back = clicks = 0
        recovered: dict[str, Decimal] = {}
        for n in range(len(ids)):
            (status, outcome), feedback, clicked, (mrr, currency) = replies[4 * n : 4 * n + 4]
            if status is None or status == "erased":
                continue
            sent += 1
            answered += 1 if feedback else 0
            came_back += 1 if outcome in ("came_back", "won_back") else 0
            clicks += 1 if clicked else 0
            if outcome == "won_back" and mrr and currency:
                try:
                    recovered[currency] = recovered.get(currency, Decimal(0)) + Decimal(mrr)
                except InvalidOperation:
                    continue
        return VariantOutcome(sent, answered, came_back, clicks, recovered)
