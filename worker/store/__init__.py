"""Farewell's Redis store: every key it owns (keys.py) and the operations on them.

    keys.py       key names and the layout: what each key holds, and who writes it
    records.py    the records read and written, as dataclasses (Sequence, Feedback, ...)
    metrics.py    how a Prometheus counter is encoded as a field of the metrics hash
    scripts.py    every Lua script (KEYS/ARGV noted), each run by one method of Scripts
    intake.py, members.py, sequences.py, sends.py, feedback.py, insights.py,
    suppressions.py, pools.py, health.py, templates.py, variants.py, counters.py: the
    operations, one concern each

`Store` gathers the operations on one client, so callers hold a single object. The names
re-exported below are what callers import from `worker.store`.
"""

from __future__ import annotations

from redis import Redis

from .counters import Counters
from .feedback import Feedbacks
from .health import Health
from .insights import Insights
from .intake import Intake
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
    rejoin_key,
    scheduler_lock_key,
    send_claim_key,
    sequence_claims_key,
    sequence_key,
    winback_key,
)
from .members import Members
from .metrics import EMAILS_METRIC, RECEIVED_METRIC, metric_field, parse_metric_field
from .pools import Pools
from .records import (
    Cancellation,
    Feedback,
    JobRecord,
    SendChecks,
    Sequence,
    SequenceOutcome,
    Suppression,
)
from .rejoins import Rejoins, WinbackSteps
from .scripts import Claimed, Scripts
from .sends import CLAIM_TAKEOVER_AFTER, HeldClaim, Phase, SendClaim, Sends
from .sequences import Sequences
from .suppressions import Suppressions
from .templates import Templates
from .variants import Variants

__all__ = [
    "ALIVE_TTL",
    "BATCH_OWNERS_KEY",
    "CANCELLATIONS_KEY",
    "CANCELLATION_MEMBERSHIPS_KEY",
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
    "Claimed",
    "Feedback",
    "HeldClaim",
    "JobRecord",
    "Phase",
    "SendChecks",
    "SendClaim",
    "Sequence",
    "SequenceOutcome",
    "Store",
    "Suppression",
    "WinbackSteps",
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
    "rejoin_key",
    "scheduler_lock_key",
    "send_claim_key",
    "sequence_claims_key",
    "sequence_key",
    "winback_key",
]


class Store(
    Intake,
    Members,
    Sequences,
    Sends,
    Feedbacks,
    Rejoins,
    Insights,
    Suppressions,
    Pools,
    Health,
    Templates,
    Variants,
    Counters,
):
    """Typed access to Farewell's Redis keys. Takes a client built with decode_responses."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._lua = Scripts(redis)


def connect(url: str, *, socket_timeout: float = 2.0) -> Redis:
    """A client whose failures come fast, so the receiver can fall back to its spool."""
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=0.5,
        socket_timeout=socket_timeout,
        health_check_interval=30,
    )
