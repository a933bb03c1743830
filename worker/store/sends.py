"""Sending a step: the checks read first, the send claim that makes each email go at most
once, and what a send leaves behind (the `sent` claim, the send log, the emails counter).

A claim is `sending|<owner>|<at>` until the transport passes its point of no return
(`committing|...`, see `commit_send`), then `sent:<message id>`. A `sending` claim whose
owner has no heartbeat any more (a worker killed before its transport committed to
anything) is taken over; a `committing` one never is: at most once. Callers see claims as
`SendClaim` and `HeldClaim`, never as these strings.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from redis import Redis

from .keys import (
    LAST_SEND_ERROR_KEY,
    METRICS_KEY,
    SEND_CLAIM_TTL,
    SENDLOG_KEY,
    SENDLOG_MAXLEN,
    SUPPRESSED_KEY,
    feedback_key,
    member_hash_key,
    member_paused_key,
    send_claim_key,
    sequence_key,
    variant_sequences_key,
    winback_key,
)
from .metrics import EMAILS_METRIC, metric_field
from .records import Feedback, SendChecks, member_from, sequence_from
from .scripts import Claimed, Scripts

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    """Where a held claim's send stands."""

    SENDING = "sending"  # claimed; the transport has not reached its point of no return
    COMMITTING = "committing"  # past it: the message may have left, never sent again
    SENT = "sent"  # done (`sent:<message id>`, or `sent:rejected`)


@dataclass(frozen=True)
class HeldClaim:
    """A claim someone else holds, as read from its stored value."""

    value: str

    @property
    def phase(self) -> Phase:
        head = self.value.split("|", 1)[0]
        if head in (Phase.SENDING.value, Phase.COMMITTING.value):
            return Phase(head)
        return Phase.SENT  # `sent:...`, or anything else: never sent again

    @property
    def owner(self) -> str | None:
        """The worker holding it; None for a bare phase (a process without a heartbeat)."""
        parts = self.value.split("|")
        return parts[1] if len(parts) == 3 else None

    @property
    def busy(self) -> bool:
        """Held by a worker that may still send it (or dies and has it taken over): come
        back later rather than drop the step."""
        return self.phase is Phase.SENDING and self.owner is not None

    @property
    def label(self) -> str:
        """What to say about it in an outcome: `sent:<id>`, `committing`, `sending`."""
        return self.value.split("|")[0]


@dataclass(frozen=True)
class SendClaim:
    """claim_send's answer: ours (perhaps taken over from a dead worker), the sequence's
    cap reached, or held by someone else (`held`)."""

    result: Claimed
    held: HeldClaim | None = None

    @property
    def ours(self) -> bool:
        return self.result in (Claimed.OURS, Claimed.TAKEN_OVER)


# A `sending` claim is taken over only once it is this old (seconds) and its owner's
# heartbeat is gone: a guard against judging a process that has only just started.
CLAIM_TAKEOVER_AFTER = 2


def _claim_prefix(phase: str, owner: str | None) -> str:
    return f"{phase}|{owner}|" if owner else phase


def _claim_value(phase: str, owner: str | None) -> str:
    """Processes without a heartbeat write a bare phase: never taken over."""
    return f"{phase}|{owner}|{time.time():.3f}" if owner else phase


class Sends:
    redis: Redis
    _lua: Scripts

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
            sequence=sequence_from(sequence_id, seq),
            member=member_from(member[0]) if member else None,
            suppressed=bool(suppressed),
            feedback=Feedback.from_hash(sequence_id, feedback) if feedback else None,
            paused=bool(paused),
        )

    def claim_send(
        self, sequence_id: str, step: str, cap: int = 0, owner: str | None = None
    ) -> SendClaim:
        """Take the send claim for a step. Only when the answer is `ours` may the caller
        call the transport. `cap`: at most this many claimed steps per sequence (0: none)."""
        reply = self._lua.claim(
            sequence_id,
            step,
            cap,
            _claim_value("sending", owner),
            time.time(),
            CLAIM_TAKEOVER_AFTER,
        )
        if reply.result is Claimed.TAKEN_OVER:
            log.warning(
                "send %s/%s: took over the claim of a dead worker (%s)",
                sequence_id,
                step,
                reply.claim,
            )
        if reply.result is Claimed.HELD:
            return SendClaim(Claimed.HELD, HeldClaim(reply.claim))
        return SendClaim(reply.result)

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
        variant: str = "",
    ) -> None:
        """Everything a successful send writes, in one round trip: the `sent` claim, the
        emails counter, the send log, a marketing email's time (for won-back), the A/B
        variant sent (if the step has variants), and the last send error's removal when it
        was about this stream."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(send_claim_key(sequence_id, step), f"sent:{message_id}", ex=SEND_CLAIM_TTL)
        pipe.hincrby(METRICS_KEY, metric_field(EMAILS_METRIC, metric_labels), 1)
        if stream == "marketing":
            pipe.hset(sequence_key(sequence_id), "marketing_sent_at", repr(now))
            pipe.hsetnx(winback_key(sequence_id), step, repr(now))  # the funnel per email
        entry = {
            "sequence": sequence_id,
            "step": step,
            "transport": transport,
            "message_id": message_id,
            "at": repr(now),
        }
        pipe.xadd(SENDLOG_KEY, entry, maxlen=SENDLOG_MAXLEN, approximate=True)
        if variant:
            pipe.sadd(variant_sequences_key(step, variant), sequence_id)
        pipe.get(LAST_SEND_ERROR_KEY)
        last_error = pipe.execute()[-1]
        if last_error and json.loads(last_error).get("stream", stream) == stream:
            self.redis.delete(LAST_SEND_ERROR_KEY)

    def log_send(self, entry: Mapping[str, str]) -> None:
        self.redis.xadd(SENDLOG_KEY, dict(entry), maxlen=SENDLOG_MAXLEN, approximate=True)

    def send_log(self, count: int = 100) -> list[dict[str, str]]:
        return [fields for _id, fields in self.redis.xrevrange(SENDLOG_KEY, count=count)]
