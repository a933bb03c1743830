"""Rejoin clicks: which win-back emails' buttons were followed, for the funnel."""

from __future__ import annotations

from redis import Redis

from .keys import rejoin_key


class Rejoins:
    redis: Redis

    def record_rejoin_click(self, sequence_id: str, step_id: str, at: float) -> bool:
        """Remember the first click on a step's rejoin button; True if it is the first."""
        return bool(self.redis.hsetnx(rejoin_key(sequence_id), step_id, repr(at)))

    def rejoin_clicked(self, sequence_ids: list[str]) -> set[str]:
        """The sequences whose rejoin button was followed at least once (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in sequence_ids:
            pipe.exists(rejoin_key(sid))
        return {sid for sid, n in zip(sequence_ids, pipe.execute(), strict=True) if n}

    def rejoin_clicks(self, sequence_id: str) -> dict[str, float]:
        """Step id -> when its rejoin button was first followed."""
        return {k: float(v) for k, v in self.redis.hgetall(rejoin_key(sequence_id)).items()}
