"""Every Redis key Farewell owns, and the operations on them.

Layout (all under the `farewell:` prefix):

    dedupe:{event_id}          "1" while a re-delivery must be ignored (TTL: dedupe_ttl)
    event:{event_id}           the normalized event as JSON (TTL: EVENT_TTL)
    pending                    zset event_id -> accepted-at; removed once handle_event is done
    member:{member_key}        hash: email, names, locale, member id, last event, came_back_at
    sequence:{sequence_id}     hash: member_key, event_id, membership, locale, status, started_at
    member:{member_key}:sequences  set of the member's sequence ids
    feedback:{sequence_id}     hash: the member's survey answer for that cancellation
    send:{sequence_id}:{step}  send claim: "sending" or "sent:<message id>" (TTL: SEND_CLAIM_TTL)
    sendlog                    stream of sends (capped at SENDLOG_MAXLEN)
    suppressed                 hash address-hash -> JSON {reason, at, hint}: never mail these
    metrics                    hash "<name>|<label>=<value>,..." -> count (Prometheus counters)
    ratelimit:{bucket}:{window}  requests in one fixed window (TTL: the window)
    alive:{owner}              a worker process's heartbeat (TTL: ALIVE_TTL)
    reclaim:{execution}        one sweeper re-queues an abandoned job execution (TTL: 5 min)
    last_send_error            JSON {at, transport, error} of the latest failed send

The web side writes only `dedupe`, `event` and `pending` (in one Lua call); the worker owns
the rest.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from .events import Event, Member, member_key
from .privacy import mask_email

log = logging.getLogger(__name__)

PREFIX = "farewell:"
EVENT_TTL = 30 * 24 * 3600
SEND_CLAIM_TTL = 400 * 24 * 3600
SENDLOG_MAXLEN = 100_000
# A worker refreshes its heartbeat every ALIVE_TTL / 3 seconds; silent this long, it is dead.
ALIVE_TTL = 10


def dedupe_key(event_id: str) -> str:
    return f"{PREFIX}dedupe:{event_id}"


def event_key(event_id: str) -> str:
    return f"{PREFIX}event:{event_id}"


PENDING_KEY = f"{PREFIX}pending"
SENDLOG_KEY = f"{PREFIX}sendlog"
SUPPRESSED_KEY = f"{PREFIX}suppressed"
METRICS_KEY = f"{PREFIX}metrics"
LAST_SEND_ERROR_KEY = f"{PREFIX}last_send_error"


RATELIMIT_PREFIX = f"{PREFIX}ratelimit:"


def ratelimit_key(bucket: str, window: int) -> str:
    return f"{RATELIMIT_PREFIX}{bucket}:{window}"


def alive_key(owner: str) -> str:
    return f"{PREFIX}alive:{owner}"


def reclaim_key(execution: str) -> str:
    return f"{PREFIX}reclaim:{execution}"


def scheduler_lock_key(queue_name: str) -> str:
    """RQ's own key: present while a scheduler holds the queue (refreshed every second)."""
    from rq.scheduler import RQScheduler

    return RQScheduler.get_locking_key(queue_name)


def member_hash_key(key: str) -> str:
    return f"{PREFIX}member:{key}"


def member_sequences_key(key: str) -> str:
    return f"{PREFIX}member:{key}:sequences"


def sequence_key(sequence_id: str) -> str:
    return f"{PREFIX}sequence:{sequence_id}"


def feedback_key(sequence_id: str) -> str:
    return f"{PREFIX}feedback:{sequence_id}"


def send_claim_key(sequence_id: str, step: str) -> str:
    return f"{PREFIX}send:{sequence_id}:{step}"


# Dedupe, durable record and pending marker in one atomic round trip: either the event is
# new and fully recorded, or it is a duplicate and nothing changes.
_ACCEPT_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
  return 1
end
return 0
"""


# Send claims (see Store.claim_send). ARGV: new value, ttl, alive-key prefix, now, takeover
# delay. Returns nil when the claim is ours, "+<old>" when taken over from a dead owner,
# or the current value.
_CLAIM_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return false
end
local owner, at = string.match(cur, '^sending|([^|]+)|([0-9.]+)$')
if owner and redis.call('EXISTS', ARGV[3] .. owner) == 0
    and tonumber(ARGV[4]) - tonumber(at) > tonumber(ARGV[5]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return '+' .. cur
end
return cur
"""
# ARGV: our `sending` prefix, the committing value.
_COMMIT_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""
_RELEASE_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, string.len(ARGV[1])) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# Fixed-window counter: INCR, and set the window's expiry on its first hit.
_RATE_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""
# A `sending` claim is taken over only once it is this old (seconds) and its owner's
# heartbeat is gone: a guard against judging a process that has only just started.
CLAIM_TAKEOVER_AFTER = 2


def _claim_prefix(phase: str, owner: str | None) -> str:
    return f"{phase}|{owner}|" if owner else phase


def _claim_value(phase: str, owner: str | None) -> str:
    """Processes without a heartbeat write a bare phase: never taken over."""
    return f"{phase}|{owner}|{time.time():.3f}" if owner else phase


@dataclass(frozen=True)
class Sequence:
    id: str
    member_key: str
    event_id: str
    membership_id: str
    membership_title: str
    locale: str
    started_at: float
    access_ends_at: str = ""  # ISO date-time, empty when the source did not say
    status: str = "active"  # active | stopped (comeback, erasure)
    outcome: str = ""  # "" | "came_back" | "won_back" (came back soon after a win-back email)
    came_back_at: float | None = None

    @classmethod
    def from_hash(cls, sequence_id: str, data: Mapping[str, str]) -> Sequence:
        return cls(
            id=sequence_id,
            member_key=data["member_key"],
            event_id=data["event_id"],
            membership_id=data.get("membership_id", ""),
            membership_title=data.get("membership_title", ""),
            locale=data["locale"],
            started_at=float(data["started_at"]),
            access_ends_at=data.get("access_ends_at", ""),
            status=data.get("status", "active"),
            outcome=data.get("outcome", ""),
            came_back_at=float(data["came_back_at"]) if data.get("came_back_at") else None,
        )


class Store:
    """Typed access to Farewell's Redis keys. Takes a client built with decode_responses."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._accept = redis.register_script(_ACCEPT_SCRIPT)
        self._claim = redis.register_script(_CLAIM_SCRIPT)
        self._commit = redis.register_script(_COMMIT_SCRIPT)
        self._release = redis.register_script(_RELEASE_SCRIPT)
        self._hit = redis.register_script(_RATE_SCRIPT)

    # --- intake (web side) -------------------------------------------------------------

    def accept_event(self, event: Event, dedupe_ttl: int) -> bool:
        """Record a new event durably; False when it was seen already."""
        event_id = event.event_id
        created = self._accept(
            keys=[dedupe_key(event_id), event_key(event_id), PENDING_KEY],
            args=[dedupe_ttl, json.dumps(event.to_dict()), EVENT_TTL, time.time(), event_id],
        )
        return bool(created)

    def load_event(self, event_id: str) -> Event | None:
        raw = self.redis.get(event_key(event_id))
        return Event.from_dict(json.loads(raw)) if raw else None

    def finish_event(self, event_id: str) -> None:
        self.redis.zrem(PENDING_KEY, event_id)

    def stale_pending(self, older_than: float, now: float | None = None) -> list[str]:
        cutoff = (now if now is not None else time.time()) - older_than
        return list(self.redis.zrangebyscore(PENDING_KEY, "-inf", cutoff))

    # --- members -----------------------------------------------------------------------

    def save_member(self, member: Member, **extra: str) -> str:
        key = member.key
        fields = {
            "email": member.email,
            "member_id": member.id,
            "first_name": member.first_name,
            "last_name": member.last_name,
            **({"locale": member.locale} if member.locale else {}),
            **extra,
        }
        self.redis.hset(member_hash_key(key), mapping=fields)
        return key

    def load_member(self, key: str) -> Member | None:
        data = self.redis.hgetall(member_hash_key(key))
        if not data or "email" not in data:
            return None
        return Member(
            email=data["email"],
            id=data.get("member_id", ""),
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            locale=data.get("locale") or None,
        )

    def member_field(self, key: str, name: str) -> str | None:
        return self.redis.hget(member_hash_key(key), name)

    # --- sequences ---------------------------------------------------------------------

    def create_sequence(self, seq: Sequence) -> bool:
        """Create the sequence once; False if it exists (a replayed cancellation)."""
        key = sequence_key(seq.id)
        mapping = {
            "member_key": seq.member_key,
            "event_id": seq.event_id,
            "membership_id": seq.membership_id,
            "membership_title": seq.membership_title,
            "locale": seq.locale,
            "started_at": repr(seq.started_at),
            "access_ends_at": seq.access_ends_at,
            "status": seq.status,
        }
        if not self.redis.hsetnx(key, "member_key", seq.member_key):
            return False
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping=mapping)
        pipe.sadd(member_sequences_key(seq.member_key), seq.id)
        pipe.execute()
        return True

    def load_sequence(self, sequence_id: str) -> Sequence | None:
        data = self.redis.hgetall(sequence_key(sequence_id))
        if not data or "locale" not in data:
            return None
        return Sequence.from_hash(sequence_id, data)

    # --- feedback ----------------------------------------------------------------------

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
        if not data:
            return None
        return Feedback(
            sequence_id=sequence_id,
            reason=data.get("reason", ""),
            comment=data.get("comment", ""),
            no_email=data.get("no_email") == "1",
            at=float(data.get("at", 0)),
        )

    # --- sending -----------------------------------------------------------------------

    def claim_send(self, sequence_id: str, step: str, owner: str | None = None) -> str | None:
        """Take the send claim for a step; returns the existing claim if someone has it.

        None means the caller now owns the claim and may call the transport. A claim is
        `sending|<owner>|<at>` until the transport passes its point of no return
        (`committing|...`, see `commit_send`), then `sent:<message id>`. A `sending`
        claim whose owner has no heartbeat any more (a worker killed before its transport
        committed to anything) is taken over; a `committing` one never is: at most once.
        """
        key = send_claim_key(sequence_id, step)
        value = _claim_value("sending", owner)
        result = self._claim(
            keys=[key],
            args=[value, SEND_CLAIM_TTL, alive_key(""), time.time(), CLAIM_TAKEOVER_AFTER],
        )
        if result is None:
            return None
        if result.startswith("+"):
            log.warning(
                "send %s/%s: took over the claim of a dead worker (%s)",
                sequence_id,
                step,
                result[1:],
            )
            return None
        return result

    def commit_send(self, sequence_id: str, step: str, owner: str | None = None) -> bool:
        """Mark the claim as past the point of no return; False if it is no longer ours
        (taken over while this process was frozen): then nothing may be sent."""
        key = send_claim_key(sequence_id, step)
        return bool(
            self._commit(
                keys=[key],
                args=[_claim_prefix("sending", owner), _claim_value("committing", owner)],
            )
        )

    def mark_sent(self, sequence_id: str, step: str, message_id: str) -> None:
        self.redis.set(send_claim_key(sequence_id, step), f"sent:{message_id}", ex=SEND_CLAIM_TTL)

    def release_send(self, sequence_id: str, step: str, owner: str | None = None) -> None:
        """Only for failures known to have sent nothing, so a retry may send. Releases
        only a claim this owner still holds in the `sending` phase."""
        self._release(
            keys=[send_claim_key(sequence_id, step)], args=[_claim_prefix("sending", owner)]
        )

    def log_send(self, entry: Mapping[str, str]) -> None:
        self.redis.xadd(SENDLOG_KEY, dict(entry), maxlen=SENDLOG_MAXLEN, approximate=True)

    def send_log(self, count: int = 100) -> list[dict[str, str]]:
        return [fields for _id, fields in self.redis.xrevrange(SENDLOG_KEY, count=count)]

    # --- suppression -------------------------------------------------------------------
    # Keyed by a hash of the address, so an erased member stays unsubscribed without us
    # keeping their address; `hint` is the masked address, for operators.

    def suppress(self, email: str, reason: str) -> bool:
        """Add the address; False if it was suppressed already (the first reason stays)."""
        entry = {"reason": reason, "at": time.time(), "hint": mask_email(email)}
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

    # --- operations: metrics, rate limits, last send error -------------------------------
    # Counters live in Redis so that every web and worker process adds to the same totals.

    def count(self, name: str, amount: int = 1, **labels: str) -> None:
        """Add to a Prometheus counter; never raises (a metric must not fail a request)."""
        try:
            self.redis.hincrby(METRICS_KEY, metric_field(name, labels), amount)
        except RedisError:
            pass

    def counters(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
        """Every counter as {(name, ((label, value), ...)): count}."""
        return {parse_metric_field(k): int(v) for k, v in self.redis.hgetall(METRICS_KEY).items()}

    def hit_rate_limit(self, bucket: str, limit: int, window: int, now: float | None = None):
        """Count one request in `bucket`'s current fixed window.

        Returns None when allowed, else the seconds until the window ends (Retry-After).
        """
        now = time.time() if now is None else now
        start = int(now // window) * window
        hits = int(self._hit(keys=[ratelimit_key(bucket, start)], args=[window + 1]))
        if hits <= limit:
            return None
        return max(1, int(start + window - now + 0.999))

    def record_send_error(self, transport: str, error: str) -> None:
        entry = {"at": time.time(), "transport": transport, "error": error[:500]}
        self.redis.set(LAST_SEND_ERROR_KEY, json.dumps(entry), ex=EVENT_TTL)

    def last_send_error(self) -> dict | None:
        raw = self.redis.get(LAST_SEND_ERROR_KEY)
        return json.loads(raw) if raw else None

    def scheduler_alive(self, queue_name: str) -> bool:
        return bool(self.redis.exists(scheduler_lock_key(queue_name)))


def _label_value(value: object) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.:" else "_" for ch in str(value))[:64]


def metric_field(name: str, labels: Mapping[str, object]) -> str:
    pairs = ",".join(f"{k}={_label_value(v)}" for k, v in sorted(labels.items()))
    return f"{name}|{pairs}"


def parse_metric_field(field_: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    name, _, pairs = field_.partition("|")
    labels = tuple(tuple(p.split("=", 1)) for p in pairs.split(",") if "=" in p)
    return name, labels  # type: ignore[return-value]


@dataclass(frozen=True)
class Feedback:
    sequence_id: str
    reason: str  # a stable reason id from email_templates/reasons.toml, or ""
    comment: str
    no_email: bool  # "please don't email me again"
    at: float


@dataclass(frozen=True)
class Suppression:
    address_hash: str
    reason: str  # "unsubscribed", "asked_no_email", "bounced", "complained", "manual", ...
    at: float
    hint: str  # masked address, e.g. "j***@example.com"

    @classmethod
    def from_json(cls, address_hash: str, raw: str) -> Suppression:
        data = json.loads(raw)
        return cls(address_hash, data["reason"], float(data["at"]), data.get("hint", ""))


def connect(url: str, *, socket_timeout: float = 2.0) -> Redis:
    """A client whose failures come fast, so the receiver can fall back to its spool."""
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=0.5,
        socket_timeout=socket_timeout,
        health_check_interval=30,
    )
