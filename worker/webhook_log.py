"""What each source delivered: the Connections page's record, kept compact in Redis.

Per source, two capped lists of small JSON entries (the last deliveries received, the last
refused ones) and, shared by all sources, one counts hash per hour kept for 8 days, so the
last 24 hours and 7 days are a sum of buckets. No payloads, no secrets, no member
addresses; client addresses are masked (`worker.privacy.mask_ip`).

A queued or duplicate delivery is recorded inside the intake script (`Store.accept_event`,
with `accept_record`), so the receiver's hot path keeps its one round trip; every other
result is one call of `record`, which also adds to the received-webhooks metric.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from redis import Redis

PREFIX = "farewell:"
LIST_CAP = 25  # entries shown per list and source (up to twice as many are kept)
HOUR = 3600
COUNTS_TTL = 8 * 24 * HOUR  # a 7-day window, plus the hour being written
MEMBERPRESS_KEY = f"{PREFIX}connections:memberpress_key"
RECORD_PREFIX = (f"{PREFIX}deliveries:", f"{PREFIX}refusals:")  # every record key starts so


class Result(StrEnum):
    """What became of one delivery."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"
    RECORDED = "recorded"  # a payment: noted, nothing to send
    IGNORED = "ignored"
    REFUSED = "refused"
    PING = "ping"


class Refusal(StrEnum):
    """Why a delivery was refused (the reply's detail goes with it)."""

    WRONG_KEY = "wrong key"
    BAD_SIGNATURE = "bad signature"
    INVALID_BODY = "invalid body"
    TOO_LARGE = "too large"


def deliveries_key(source: str) -> str:
    return f"{PREFIX}deliveries:{source}"


def refusals_key(source: str) -> str:
    return f"{PREFIX}refusals:{source}"


def counts_key(hour_start: int) -> str:
    return f"{PREFIX}deliveries:counts:{hour_start}"


def _hour(at: float) -> int:
    return int(at // HOUR) * HOUR


def _field(source: str, result: Result) -> str:
    return f"{source}:{result.value}"


# One delivery that is not an accept: the entry on its list (KEYS[1]; ARGV[1] "" for
# none; ARGV[2] entries kept, trimmed once there are twice as many, so LTRIM runs once per
# ARGV[2] pushes), one in this hour's counts (KEYS[2], field ARGV[3]; TTL ARGV[4] set when
# the field is created) and one in the metrics hash (KEYS[3], field ARGV[5]; "" counts
# nothing). One round trip. Readers take the first LIST_CAP entries.
_RECORD_SCRIPT = """
if ARGV[1] ~= '' and redis.call('LPUSH', KEYS[1], ARGV[1]) > 2 * tonumber(ARGV[2]) then
  redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
end
if redis.call('HINCRBY', KEYS[2], ARGV[3], 1) == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
if ARGV[5] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[5], 1) end
return 1
"""


def _entry(**values: object) -> str:
    return json.dumps({k: v for k, v in values.items() if v not in (None, "")})


def accept_record(
    source: str, event_name: str, event_id: str, now: float | None = None
) -> tuple[list[str], list[str | int]]:
    """The keys and arguments the intake script takes to record this delivery as queued
    or as a duplicate, whichever it turns out to be (see `ACCEPT` in worker/store/scripts.py)."""
    at = time.time() if now is None else now
    common = {"at": round(at, 3), "event": event_name, "event_id": event_id}
    return (
        [deliveries_key(source), counts_key(_hour(at))],
        [
            _entry(**common, result=Result.QUEUED.value),
            _entry(**common, result=Result.DUPLICATE.value, reason="already received"),
            LIST_CAP,
            _field(source, Result.QUEUED),
            _field(source, Result.DUPLICATE),
            COUNTS_TTL,
        ],
    )


class Recorder:
    """Records the deliveries that are not accepts (ignored, refused, pings)."""

    def __init__(self, redis: Redis, metrics_key: str) -> None:
        self.metrics_key = metrics_key
        self._script = redis.register_script(_RECORD_SCRIPT)

    def ignored(self, source: str, event_name: str, reason: str, metric_field: str) -> None:
        entry = _entry(
            at=round(time.time(), 3), event=event_name, result=Result.IGNORED.value, reason=reason
        )
        self._run(source, Result.IGNORED, deliveries_key(source), entry, metric_field)

    def refused(
        self, source: str, refusal: Refusal, detail: str, client: str, metric_field: str = ""
    ) -> None:
        entry = _entry(
            at=round(time.time(), 3), reason=refusal.value, detail=detail[:300], client=client
        )
        self._run(source, Result.REFUSED, refusals_key(source), entry, metric_field)

    def recorded(self, source: str, event_name: str, event_id: str) -> None:
        """A delivery recorded without a job (a payment), known only after the accept."""
        entry = _entry(
            at=round(time.time(), 3),
            event=event_name,
            event_id=event_id,
            result=Result.RECORDED.value,
            reason="payment noted for the paid-until date",
        )
        self._run(source, Result.RECORDED, deliveries_key(source), entry, "")

    def ping(self, source: str, metric_field: str) -> None:
        self._run(source, Result.PING, "", "", metric_field)

    def _run(self, source: str, result: Result, key: str, entry: str, metric: str) -> None:
        at = time.time()
        self._script(
            keys=[key or deliveries_key(source), counts_key(_hour(at)), self.metrics_key],
            args=[entry, LIST_CAP, _field(source, result), COUNTS_TTL, metric],
        )


@dataclass(frozen=True)
class Entry:
    """One recorded delivery or refusal, as the Connections page shows it."""

    at: float
    result: str  # a Result value, or "refused"
    event: str = ""
    event_id: str = ""
    reason: str = ""
    detail: str = ""
    client: str = ""

    @classmethod
    def from_json(cls, raw: str, default_result: str = "") -> Entry:
        data = json.loads(raw)
        return cls(
            at=float(data.get("at", 0)),
            result=data.get("result", default_result),
            event=data.get("event", ""),
            event_id=data.get("event_id", ""),
            reason=data.get("reason", ""),
            detail=data.get("detail", ""),
            client=data.get("client", ""),
        )


@dataclass(frozen=True)
class SourceActivity:
    deliveries: list[Entry]
    refusals: list[Entry]
    last_24h: dict[str, int]
    last_7d: dict[str, int]
    last_ping: Mapping[str, str]


def sum_counts(
    buckets: Iterable[tuple[int, Mapping[str, str]]], source: str, since: float
) -> dict[str, int]:
    """Counts per result for `source` over the hour buckets starting at or after the hour
    that holds `since` (pure)."""
    first = _hour(since)
    totals = {result.value: 0 for result in Result}
    prefix = f"{source}:"
    for hour_start, fields in buckets:
        if hour_start < first:
            continue
        for name, value in fields.items():
            if name.startswith(prefix) and name[len(prefix) :] in totals:
                totals[name[len(prefix) :]] += int(value)
    return totals


def activity(
    redis: Redis, sources: Iterable[str], ping_keys: Mapping[str, str], now: float | None = None
) -> dict[str, SourceActivity]:
    """Every source's record, read in one pipelined round trip."""
    now = time.time() if now is None else now
    names = list(sources)
    hours = [_hour(now) - i * HOUR for i in range(7 * 24)]
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.lrange(deliveries_key(name), 0, LIST_CAP - 1)
        pipe.lrange(refusals_key(name), 0, LIST_CAP - 1)
        pipe.hgetall(ping_keys[name])
    for hour_start in hours:
        pipe.hgetall(counts_key(hour_start))
    replies = pipe.execute()
    buckets = list(zip(hours, replies[3 * len(names) :], strict=True))
    result = {}
    for i, name in enumerate(names):
        delivered, refused, ping = replies[3 * i : 3 * i + 3]
        result[name] = SourceActivity(
            deliveries=[Entry.from_json(raw) for raw in delivered],
            refusals=[Entry.from_json(raw, Result.REFUSED.value) for raw in refused],
            last_24h=sum_counts(buckets, name, now - 24 * HOUR + HOUR),
            last_7d=sum_counts(buckets, name, now - 7 * 24 * HOUR + HOUR),
            last_ping=ping,
        )
    return result
