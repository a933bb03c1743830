"""Events as the web side accepts them and the worker takes them up: the durable record,
its dedupe marker, the pending backlog, and plugins' activation pings."""

from __future__ import annotations

import json
import time

from redis import Redis

from ..events import Event
from ..webhook_log import accept_record
from .keys import EVENT_TTL, PENDING_KEY, event_key, ping_key
from .metrics import RECEIVED_METRIC, metric_field
from .records import JobRecord
from .scripts import Scripts


class Intake:
    redis: Redis
    _lua: Scripts

    def accept_state(
        self, state_key: str, head: list[str], keys: list[str], args: list
    ) -> tuple[int, str]:
        """A stateful source's delivery: worker/subscription_state.py's state test and the
        accept, atomically (scripts.STATE_ACCEPT)."""
        return self._lua.accept_state(state_key, head, keys, args)

    def accept_event(
        self,
        event: Event,
        dedupe_ttl: int,
        job: JobRecord | None = None,
        *,
        counted: bool = False,
    ) -> bool:
        """Record a new event durably, and write `job` with it; False when it was seen
        already (then nothing is written). With `counted`, also add one to
        farewell_events_received_total (status queued or duplicate). One round trip."""
        labels = {"source": event.source, "kind": event.kind.value}
        count_as = (
            metric_field(RECEIVED_METRIC, {**labels, "status": "queued"}) if counted else "",
            metric_field(RECEIVED_METRIC, {**labels, "status": "duplicate"}) if counted else "",
        )
        return self._lua.accept(
            event.event_id,
            json.dumps(event.to_dict()),
            dedupe_ttl,
            time.time(),
            count_as,
            job,
            # The receiver's delivery, recorded for the Connections page.
            accept_record(event.source, event.name, event.event_id) if counted else None,
        )

    def load_event(self, event_id: str) -> Event | None:
        raw = self.redis.get(event_key(event_id))
        return Event.from_dict(json.loads(raw)) if raw else None

    def update_event(self, event: Event) -> None:
        """Replace a recorded event with what the worker learned (Stripe: the member)."""
        self.redis.set(event_key(event.event_id), json.dumps(event.to_dict()), ex=EVENT_TTL)

    def finish_event(self, event_id: str) -> None:
        self.redis.zrem(PENDING_KEY, event_id)

    def pending_count(self) -> int:
        """Accepted events not yet handled: the backlog a wave builds."""
        return int(self.redis.zcard(PENDING_KEY))

    def stale_pending(
        self, older_than: float, now: float | None = None, limit: int | None = None
    ) -> list[str]:
        """Events accepted more than `older_than` seconds ago and not yet handled, oldest
        first (at most `limit`)."""
        cutoff = (now if now is not None else time.time()) - older_than
        if limit is None:
            return list(self.redis.zrangebyscore(PENDING_KEY, "-inf", cutoff))
        return list(self.redis.zrangebyscore(PENDING_KEY, "-inf", cutoff, start=0, num=limit))

    def record_ping(self, source: str, detail: str) -> None:
        """A plugin's activation ping: nothing to act on, kept so operators can see it."""
        self.redis.hset(ping_key(source), mapping={"at": repr(time.time()), "detail": detail})

    def last_ping(self, source: str) -> dict[str, str]:
        return self.redis.hgetall(ping_key(source))
