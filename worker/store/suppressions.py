"""The suppression list: addresses never to mail. Keyed by a hash of the address, so an
erased member stays unsubscribed without us keeping their address; `hint` is the masked
address, for operators."""

from __future__ import annotations

import json
import time

from redis import Redis

from ..events import member_key
from ..privacy import mask_email
from .keys import SUPPRESSED_KEY
from .records import Suppression


class Suppressions:
    redis: Redis

    def suppress(self, email: str, reason: str, membership_id: str = "") -> bool:
        """Add the address; False if it was suppressed already (the first reason stays).
        `membership_id`: the membership whose email the member unsubscribed from, if known
        (for the dashboard's membership filter)."""
        entry = {"reason": reason, "at": time.time(), "hint": mask_email(email)}
        if membership_id:
            entry["membership_id"] = membership_id
        return bool(self.redis.hsetnx(SUPPRESSED_KEY, member_key(email), json.dumps(entry)))

    def unsuppress(self, email: str) -> bool:
        return bool(self.redis.hdel(SUPPRESSED_KEY, member_key(email)))

    def is_suppressed(self, email: str) -> bool:
        return bool(self.redis.hexists(SUPPRESSED_KEY, member_key(email)))

    def suppression(self, email: str) -> Suppression | None:
        raw = self.redis.hget(SUPPRESSED_KEY, member_key(email))
        return Suppression.from_json(member_key(email), raw) if raw else None

    def suppressions(self) -> list[Suppression]:
        entries = [Suppression.from_json(k, v) for k, v in self.redis.hscan_iter(SUPPRESSED_KEY)]
        return sorted(entries, key=lambda e: e.at)
