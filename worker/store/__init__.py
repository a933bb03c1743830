"""Farewell's Redis store: key names and layout in keys.py, records in records.py, metric
field encoding in metrics.py; the operations below."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping

from redis import Redis
from redis.exceptions import RedisError

from ..events import Event, Member, member_key
from ..privacy import mask_email
from .keys import (
    ALIVE_TTL,
    BATCH_OWNERS_KEY,
    CANCELLATION_MEMBERSHIPS_KEY,
    CANCELLATIONS_KEY,
    EVENT_TTL,
    LAST_SEND_ERROR_KEY,
    METRICS_KEY,
    PENDING_KEY,
    PREFIX,
    RATELIMIT_PREFIX,
    SEND_CLAIM_TTL,
    SENDLOG_KEY,
    SENDLOG_MAXLEN,
    STRIPE_ERROR_KEY,
    SUPPRESSED_KEY,
    alive_key,
    batch_key,
    cancellation_key,
    cooldown_key,
    dedupe_key,
    event_key,
    feedback_key,
    member_events_key,
    member_hash_key,
    member_paused_key,
    member_sequences_key,
    membership_cancellations_key,
    ping_key,
    pool_key,
    ratelimit_key,
    scheduler_lock_key,
    send_claim_key,
    sequence_claims_key,
    sequence_key,
)
from .metrics import EMAILS_METRIC, RECEIVED_METRIC, metric_field, parse_metric_field
from .records import (
    Cancellation,
    Feedback,
    JobRecord,
    SendChecks,
    Sequence,
    SequenceOutcome,
    Suppression,
)
from .records import member_fields as _member_fields
from .records import member_from as _member_from
from .records import sequence_from as _sequence_from
from .scripts import Claimed, Scripts, Started

__all__ = [
    "ALIVE_TTL",
    "BATCH_OWNERS_KEY",
    "CANCELLATIONS_KEY",
    "CANCELLATION_MEMBERSHIPS_KEY",
    "CAP_REACHED",
    "CLAIM_TAKEOVER_AFTER",
    "EMAILS_METRIC",
    "EVENT_TTL",
    "LAST_SEND_ERROR_KEY",
    "METRICS_KEY",
    "PENDING_KEY",
    "PREFIX",
    "RATELIMIT_PREFIX",
    "RECEIVED_METRIC",
    "SENDLOG_KEY",
    "SENDLOG_MAXLEN",
    "SEND_CLAIM_TTL",
    "STRIPE_ERROR_KEY",
    "SUPPRESSED_KEY",
    "Cancellation",
    "Feedback",
    "JobRecord",
    "SendChecks",
    "Sequence",
    "SequenceOutcome",
    "Store",
    "Suppression",
    "alive_key",
    "batch_key",
    "cancellation_key",
    "connect",
    "cooldown_key",
    "dedupe_key",
    "event_key",
    "feedback_key",
    "member_events_key",
    "member_hash_key",
    "member_paused_key",
    "member_sequences_key",
    "membership_cancellations_key",
    "metric_field",
    "parse_metric_field",
    "ping_key",
    "pool_key",
    "ratelimit_key",
    "scheduler_lock_key",
    "send_claim_key",
    "sequence_claims_key",
    "sequence_key",
]

log = logging.getLogger(__name__)


CAP_REACHED = "cap reached"

# A `sending` claim is taken over only once it is this old (seconds) and its owner's
# heartbeat is gone: a guard against judging a process that has only just started.
CLAIM_TAKEOVER_AFTER = 2


def _claim_prefix(phase: str, owner: str | None) -> str:
    return f"{phase}|{owner}|" if owner else phase


def _claim_value(phase: str, owner: str | None) -> str:
    """Processes without a heartbeat write a bare phase: never taken over."""
    return f"{phase}|{owner}|{time.time():.3f}" if owner else phase


class Store:
    """Typed access to Farewell's Redis keys. Takes a client built with decode_responses."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._lua = Scripts(redis)

    # --- intake (web side) -------------------------------------------------------------

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

    # --- members -----------------------------------------------------------------------

    def note_member_event(
        self,
        member: Member,
        event_id: str,
        fields: Mapping[str, str] | None,
        paused: tuple[str, bool] | None = None,
    ) -> str | None:
        """Everything an event records about its member, in one round trip: the event in
        the member's index (for erasure), the member saved with `fields` (None saves
        nothing: an erasure), and `paused` = (subscription, paused or not). Returns the
        member's came_back_at as it was before."""
        key = member.key
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(member_hash_key(key), "came_back_at")
        pipe.sadd(member_events_key(key), event_id)
        if fields is not None:
            pipe.hset(member_hash_key(key), mapping=_member_fields(member, fields))
        if paused is not None:
            subscription, is_paused = paused
            if is_paused:
                pipe.sadd(member_paused_key(key), subscription)
            else:
                pipe.srem(member_paused_key(key), subscription)
        return pipe.execute()[0]

    def load_member(self, key: str) -> Member | None:
        return _member_from(self.redis.hgetall(member_hash_key(key)))

    def member_field(self, key: str, name: str) -> str | None:
        return self.redis.hget(member_hash_key(key), name)

    # --- sequences ---------------------------------------------------------------------

    def start_sequence(self, seq: Sequence, plan: Mapping[str, str], cooldown: int) -> Started:
        """Take the member's cooldown (`cooldown` seconds) for this sequence and create the
        sequence, in one atomic step. Returns ("created", ""), ("exists", its status) for a
        replayed cancellation, or ("cooldown", the id of the sequence that holds it).

        `plan` maps each planned step to its stream, so pending steps can be found and
        cancelled later without the playbook (the web side has none)."""
        fields = {
            "plan": json.dumps(dict(plan)),
            "member_key": seq.member_key,
            "event_id": seq.event_id,
            "membership_id": seq.membership_id,
            "membership_title": seq.membership_title,
            "locale": seq.locale,
            "started_at": repr(seq.started_at),
            "access_ends_at": seq.access_ends_at,
            "status": seq.status,
        }
        return self._lua.start(seq.id, seq.member_key, cooldown, fields)

    def load_sequence(self, sequence_id: str) -> Sequence | None:
        return _sequence_from(sequence_id, self.redis.hgetall(sequence_key(sequence_id)))

    def sequence_member_key(self, sequence_id: str) -> str | None:
        return self.redis.hget(sequence_key(sequence_id), "member_key")

    def planned_steps(self, sequence_id: str) -> dict[str, str]:
        """step id -> stream, as planned when the sequence started."""
        raw = self.redis.hget(sequence_key(sequence_id), "plan")
        return json.loads(raw) if raw else {}

    def member_sequence_ids(self, key: str) -> list[str]:
        return sorted(self.redis.smembers(member_sequences_key(key)))

    def stop_sequence(self, sequence_id: str, outcome: str, at: float) -> bool:
        """Stop an active sequence with an outcome ("came_back", "won_back"); False if it
        was not active."""
        key = sequence_key(sequence_id)
        if self.redis.hget(key, "status") != "active":
            return False
        mapping = {"status": "stopped", "outcome": outcome, "came_back_at": repr(at)}
        self.redis.hset(key, mapping=mapping)
        return True

    def send_checks(self, sequence_id: str, member_key: str, *, with_member: bool) -> SendChecks:
        """What a send checks first, read in one round trip (the member too if asked).
        The suppression list is keyed by the same hash of the address as the member."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(sequence_key(sequence_id))
        pipe.hexists(SUPPRESSED_KEY, member_key)
        pipe.hgetall(feedback_key(sequence_id))
        pipe.scard(member_paused_key(member_key))
        if with_member:
            pipe.hgetall(member_hash_key(member_key))
        seq, suppressed, feedback, paused, *member = pipe.execute()
        return SendChecks(
            sequence=_sequence_from(sequence_id, seq),
            member=_member_from(member[0]) if member else None,
            suppressed=bool(suppressed),
            feedback=Feedback.from_hash(sequence_id, feedback) if feedback else None,
            paused=bool(paused),
        )

    def erase_member(self, key: str) -> int:
        """Delete everything stored about a member except the suppression entry (keyed by a
        hash of the address), whose masked-address hint is dropped. Returns keys deleted."""
        r = self.redis
        sequence_ids = r.smembers(member_sequences_key(key))
        doomed = [
            member_hash_key(key),
            member_sequences_key(key),
            member_events_key(key),
            member_paused_key(key),
            cooldown_key(key),
        ]
        doomed += [event_key(e) for e in r.smembers(member_events_key(key))]
        for sid in sequence_ids:
            doomed += [sequence_key(sid), sequence_claims_key(sid), feedback_key(sid)]
            # The claims set names every step that took a claim; the plan, every step.
            steps = set(r.smembers(sequence_claims_key(sid))) | set(self.planned_steps(sid))
            doomed += [send_claim_key(sid, step) for step in steps]
        deleted = r.delete(*doomed)
        for given in r.scan_iter(match=pool_key("*", "given"), count=500):
            r.hdel(given, key)
        raw = r.hget(SUPPRESSED_KEY, key)
        if raw:
            entry = json.loads(raw)
            entry["hint"] = ""
            r.hset(SUPPRESSED_KEY, key, json.dumps(entry))
        return int(deleted)

    # --- incentive pools ---------------------------------------------------------------

    def pool_signature(self, name: str) -> str | None:
        """The sha256 of the pool file last loaded."""
        return self.redis.get(pool_key(name, "loaded"))

    def load_pool(self, name: str, codes: list[str], signature: str) -> int:
        """Add the file's codes that were never seen before (a code given out or removed
        is never loaded again), and remember the file's signature. Returns how many were new."""
        added = 0
        for start in range(0, len(codes), 1000):
            added += self._lua.pool_load(name, codes[start : start + 1000])
        self.redis.set(pool_key(name, "loaded"), signature)
        return added

    def claim_pool_code(self, name: str, key: str) -> str | None:
        """The member's code from the pool (the same one on every call); None if empty."""
        return self._lua.pool_claim(name, key)

    def pool_remaining(self, name: str) -> int:
        return int(self.redis.llen(pool_key(name, "available")))

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

    # --- cancellation records (insights) ---------------------------------------------
    # One record per cancellation, whether or not a sequence started (cooldown, erased
    # member): the counts must not depend on what the playbook did.

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
            pipe.hmget(sequence_key(sid), ["locale", "outcome", "came_back_at"])
        return {
            sid: SequenceOutcome(outcome or "", float(came_back_at) if came_back_at else None)
            for sid, (locale, outcome, came_back_at) in zip(
                sequence_ids, pipe.execute(), strict=True
            )
            if locale is not None
        }

    def member_emails(self, member_keys: list[str]) -> dict[str, str]:
        """Current address per member key; erased members are absent."""
        pipe = self.redis.pipeline(transaction=False)
        for key in member_keys:
            pipe.hget(member_hash_key(key), "email")
        return {key: email for key, email in zip(member_keys, pipe.execute(), strict=True) if email}

    # --- sending -----------------------------------------------------------------------

    def claim_send(
        self, sequence_id: str, step: str, cap: int = 0, owner: str | None = None
    ) -> str | None:
        """Take the send claim for a step; returns the existing claim if someone has it, or
        CAP_REACHED when the sequence already claimed `cap` other steps (0: no cap).

        None means the caller now owns the claim and may call the transport."""
        reply = self._lua.claim(
            sequence_id,
            step,
            cap,
            _claim_value("sending", owner),
            time.time(),
            CLAIM_TAKEOVER_AFTER,
        )
        if reply.result is Claimed.CAP:
            return CAP_REACHED
        if reply.result is Claimed.TAKEN_OVER:
            log.warning(
                "send %s/%s: took over the claim of a dead worker (%s)",
                sequence_id,
                step,
                reply.claim,
            )
            return None
        return reply.claim or None

    def commit_send(self, sequence_id: str, step: str, owner: str | None = None) -> bool:
        """Mark the claim as past the point of no return; False if it is no longer ours
        (taken over while this process was frozen): then nothing may be sent."""
        return self._lua.commit(
            sequence_id, step, _claim_prefix("sending", owner), _claim_value("committing", owner)
        )

    def mark_sent(self, sequence_id: str, step: str, message_id: str) -> None:
        self.redis.set(send_claim_key(sequence_id, step), f"sent:{message_id}", ex=SEND_CLAIM_TTL)

    def release_send(
        self, sequence_id: str, step: str, owner: str | None = None, *, committed: bool = False
    ) -> None:
        """Only for failures known to have sent nothing, so a retry may send. Releases only
        a claim this owner still holds, never a `sent:` one, and a `committing` one only
        with `committed` (the transport said the message never left, after the commit)."""
        sending = _claim_prefix("sending", owner)
        committing = _claim_prefix("committing", owner) if committed else sending
        self._lua.release(sequence_id, step, sending, committing)

    def record_sent(
        self,
        sequence_id: str,
        step: str,
        message_id: str,
        *,
        transport: str,
        stream: str,
        metric_labels: Mapping[str, str],
    ) -> None:
        """Everything a successful send writes, in one round trip: the `sent` claim, the
        emails counter, the send log, a marketing email's time (for won-back), and the
        last send error's removal when it was about this stream."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(send_claim_key(sequence_id, step), f"sent:{message_id}", ex=SEND_CLAIM_TTL)
        pipe.hincrby(METRICS_KEY, metric_field(EMAILS_METRIC, metric_labels), 1)
        if stream == "marketing":
            pipe.hset(sequence_key(sequence_id), "marketing_sent_at", repr(now))
        entry = {
            "sequence": sequence_id,
            "step": step,
            "transport": transport,
            "message_id": message_id,
            "at": repr(now),
        }
        pipe.xadd(SENDLOG_KEY, entry, maxlen=SENDLOG_MAXLEN, approximate=True)
        pipe.get(LAST_SEND_ERROR_KEY)
        last_error = pipe.execute()[-1]
        if last_error and json.loads(last_error).get("stream", stream) == stream:
            self.redis.delete(LAST_SEND_ERROR_KEY)

    def log_send(self, entry: Mapping[str, str]) -> None:
        self.redis.xadd(SENDLOG_KEY, dict(entry), maxlen=SENDLOG_MAXLEN, approximate=True)

    def send_log(self, count: int = 100) -> list[dict[str, str]]:
        return [fields for _id, fields in self.redis.xrevrange(SENDLOG_KEY, count=count)]

    def record_send_error(self, entry: Mapping[str, str]) -> None:
        """Remember a configuration error (bad key, unverified sender) until mail works."""
        self.redis.set(LAST_SEND_ERROR_KEY, json.dumps(dict(entry)))

    def last_send_error(self) -> dict[str, str] | None:
        raw = self.redis.get(LAST_SEND_ERROR_KEY)
        return json.loads(raw) if raw else None

    def clear_send_error(self) -> None:
        self.redis.delete(LAST_SEND_ERROR_KEY)

    def record_stripe_error(self, error: str, event_id: str) -> None:
        """Stripe refused our API key: shown on /healthz until a lookup works again."""
        entry = {"error": error, "at": time.time(), "event": event_id}
        self.redis.set(STRIPE_ERROR_KEY, json.dumps(entry))

    def stripe_error(self) -> dict[str, object] | None:
        raw = self.redis.get(STRIPE_ERROR_KEY)
        return json.loads(raw) if raw else None

    def clear_stripe_error(self) -> None:
        self.redis.delete(STRIPE_ERROR_KEY)

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

    def hit_rate_limit(
        self,
        bucket: str,
        limit: int,
        window: int,
        counted_as: tuple[str, str],
        now: float | None = None,
    ) -> int | None:
        """Count one request in `bucket`'s current fixed window, and in the metrics: the
        first of `counted_as` (metric fields) when allowed, else the second. One round trip.

        Returns None when allowed, else the seconds until the window ends (Retry-After).
        """
        now = time.time() if now is None else now
        start = int(now // window) * window
        hits = self._lua.rate(bucket, start, window + 1, limit, counted_as)
        if hits <= limit:
            return None
        return max(1, int(start + window - now + 0.999))

    def scheduler_alive(self, queue_name: str) -> bool:
        return bool(self.redis.exists(scheduler_lock_key(queue_name)))


def connect(url: str, *, socket_timeout: float = 2.0) -> Redis:
    """A client whose failures come fast, so the receiver can fall back to its spool."""
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=0.5,
        socket_timeout=socket_timeout,
        health_check_interval=30,
    )
