"""Win-back sends and rejoin clicks per email (step), for the funnel."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis import Redis

from .keys import rejoin_key, winback_key


@dataclass(frozen=True)
class WinbackSteps:
    """One sequence's win-back emails: step id -> when it went out, and step id -> when
    its rejoin button was first followed."""

    sent: dict[str, float] = field(default_factory=dict)
    clicked: dict[str, float] = field(default_factory=dict)


class Rejoins:
    redis: Redis

    def record_rejoin_click(self, sequence_id: str, step_id: str, at: float) -> bool:
        """Remember the first click on a step's rejoin button; True if it is the first."""
        return bool(self.redis.hsetnx(rejoin_key(sequence_id), step_id, repr(at)))

    def winback_steps(self, sequence_ids: list[str]) -> dict[str, WinbackSteps]:
        """Each sequence's win-back sends and rejoin clicks per step (one round trip);
        sequences with neither are left out."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in sequence_ids:
            pipe.hgetall(winback_key(sid))
            pipe.hgetall(rejoin_key(sid))
        replies = pipe.execute()
        found = {}
        for i, sid in enumerate(sequence_ids):
            sent, clicked = replies[2 * i], replies[2 * i + 1]
            if sent or clicked:
                found[sid] = WinbackSteps(
                    {k: float(v) for k, v in sent.items()},
                    {k: float(v) for k, v in clicked.items()},
                )
        return found

    def rejoin_clicks(self, sequence_id: str) -> dict[str, float]:
        """Step id -> when its rejoin button was first followed."""
        return {k: float(v) for k, v in self.redis.hgetall(rejoin_key(sequence_id)).items()}
