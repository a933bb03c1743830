"""Sending one sequence step: the send-time checks, the claim that makes it go at most
once, the transport call, and what each outcome leaves behind (the same whatever the
transport).

`deliver` answers with a `Delivery`; the RQ jobs in worker/jobs.py decide from it when to
try again. Only our own configuration (MailConfigError) and unexpected errors (rendering,
bugs) are raised. A claim taken over while the transport ran (`ClaimLost`, raised by the
commit inside the transport) sends nothing.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from typing import Final, Literal

from . import liveness, sequences
from .compose import compose
from .events import Member
from .incentives import resolve_offer
from .mail.errors import MailConfigError, RecipientRejected, TransientMailError
from .playbook import Step
from .privacy import mask_email
from .runtime import Runtime, runtime
from .store import EMAILS_METRIC, Claimed, SendChecks, Sequence

log = logging.getLogger(__name__)


class Result(enum.Enum):
    SENT = "sent"
    SKIPPED = "skipped"  # something at send time says not to (detail: why)
    REJECTED = "rejected"  # the address is refused for good: suppressed
    UNCERTAIN = "uncertain"  # the provider may have it: never retried (at most once)
    BUSY = "busy"  # another live worker holds the claim: try again later
    DEFERRED = "deferred"  # a transient failure that sent nothing: try again later


@dataclass(frozen=True)
class Delivery:
    result: Result
    detail: str = ""  # SKIPPED: the reason; BUSY: who holds it
    cause: TransientMailError | None = None  # DEFERRED: the failure, for the backoff

    @property
    def outcome(self) -> str:
        """The job's result text: "sent", "skipped: <reason>", "rejected", "uncertain"."""
        if self.result is Result.SKIPPED:
            return f"skipped: {self.detail}"
        return self.result.value


@dataclass(frozen=True)
class Skip:
    reason: str


SEND: Final = "send"


def precheck(
    checks: SendChecks, member: Member | None, step: Step | None
) -> Skip | Literal["send"]:
    """Whether a step may go out, from what was read before claiming it: SEND, or why not.
    `step`: the playbook's step for the sequence's membership (None: no longer in it)."""
    seq = checks.sequence
    if seq is None:
        return Skip("sequence no longer exists")
    if seq.status != "active":
        return Skip(f"sequence {seq.status}")
    if member is None:
        return Skip("member erased")
    if step is None:
        return Skip("step no longer in the playbook")
    if checks.suppressed:
        return Skip("address suppressed")
    paused = step.stream == "marketing" and checks.paused
    reason = sequences.skip_reason(step, checks.feedback, paused)
    return Skip(reason) if reason is not None else SEND


class ClaimLost(Exception):
    """Our send claim was taken over while we were not looking: send nothing."""


def deliver(sequence_id: str, step_id: str, member: Member | None = None) -> Delivery:
    """Render and send one step, unless something at send time says not to.
    `member`: the member as the caller just saved it, saving a read."""
    rt = runtime()
    member_key = member.key if member else rt.store.sequence_member_key(sequence_id)
    if member_key is None:
        return _skip(sequence_id, step_id, "sequence no longer exists")
    checks = rt.store.send_checks(sequence_id, member_key, with_member=member is None)
    member = member or checks.member
    seq = checks.sequence
    step = rt.playbook.step(seq.membership_id, step_id) if seq is not None else None
    verdict = precheck(checks, member, step)
    if isinstance(verdict, Skip):
        return _skip(sequence_id, step_id, verdict.reason)
    assert seq is not None and member is not None and step is not None  # precheck said so

    cap = rt.settings.max_emails_per_sequence
    owner = liveness.owner()
    claim = rt.store.claim_send(sequence_id, step_id, cap, owner=owner)
    if claim.result is Claimed.CAP:
        return _skip(sequence_id, step_id, f"at most {cap} emails per sequence")
    if claim.held is not None:
        if claim.held.busy:
            # It is sending now, or it died and its claim becomes ours once its heartbeat
            # is gone. Either way, come back later instead of dropping the step.
            busy = f"step {sequence_id}/{step_id} is being sent by another worker"
            return Delivery(Result.BUSY, busy)
        return _skip(sequence_id, step_id, f"already claimed ({claim.held.label})")
    return _send_claimed(rt, seq, step, member, owner, checks)


def _send_claimed(
    rt: Runtime, seq: Sequence, step: Step, member: Member, owner: str | None, checks: SendChecks
) -> Delivery:
    """The claim is ours: send, or release it when nothing was sent."""
    sequence_id, step_id = seq.id, step.id
    incentive = rt.playbook.incentive_for(seq.membership_id, step)
    try:
        offer = resolve_offer(
            rt.store,
            incentive,
            seq.member_key,
            seq.locale,
            rt.settings.default_locale,
            rejoin_url=rt.playbook.rejoin_url_for(seq.membership_id),
        )
    except Exception:  # e.g. the pool file vanished: nothing was sent, let a retry send
        rt.store.release_send(sequence_id, step_id, owner)
        raise
    if offer.skip_step:
        rt.store.release_send(sequence_id, step_id, owner)
        return _skip(sequence_id, step_id, f"incentive {incentive.name} exhausted (skip_step)")
    extra = {"offer": offer, "feedback_given": sequences.feedback_given(checks.feedback)}
    transport_name = rt.settings.mail_transport

    def commit() -> None:
        if not rt.store.commit_send(sequence_id, step_id, owner):
            raise ClaimLost(f"{sequence_id}/{step_id}")

    try:
        email = compose(rt.settings, rt.renderer, seq, member, step, rt.reasons, **extra)
        transport = rt.transport  # a broken transport setting is a MailConfigError here
        message_id = transport.send(email, commit)
    except ClaimLost:
        return _skip(sequence_id, step_id, "claim taken over by another worker")
    except TransientMailError as exc:
        _count_email(rt, transport_name, "deferred" if exc.sent_nothing else "uncertain")
        return _transient(rt, sequence_id, step_id, owner, exc)
    except RecipientRejected as exc:
        _count_email(rt, transport_name, "rejected")
        return _rejected(rt, sequence_id, step_id, member.email, exc)
    except MailConfigError as exc:
        _count_email(rt, transport_name, "config_error")
        _config_error(rt, sequence_id, step_id, owner, step.stream, exc)
        raise
    except Exception:
        # Rendering and programming errors before the commit sent nothing; after it, the
        # claim stays `committing` (at most once).
        rt.store.release_send(sequence_id, step_id, owner)
        raise
    rt.store.record_sent(
        sequence_id,
        step_id,
        message_id,
        transport=transport.name,
        stream=step.stream,
        metric_labels={"transport": transport_name, "result": "sent"},
        variant=email.tags.get("variant", ""),  # an A/B test's arm (worker/variants.py)
    )
    log.info(
        "step %s/%s sent to %s via %s",
        sequence_id,
        step_id,
        mask_email(member.email),
        transport.name,
    )
    return Delivery(Result.SENT)


def _count_email(rt: Runtime, transport: str, result: str) -> None:
    rt.store.count(EMAILS_METRIC, transport=transport, result=result)


def _skip(sequence_id: str, step_id: str, reason: str) -> Delivery:
    log.info("step %s/%s skipped: %s", sequence_id, step_id, reason)
    return Delivery(Result.SKIPPED, reason)


# --- delivery failures: the same handling whatever the transport -------------------------


def _transient(
    rt: Runtime, sequence_id: str, step_id: str, owner: str | None, exc: TransientMailError
) -> Delivery:
    """Try again later, unless the provider may already have the message (at most once)."""
    if not exc.sent_nothing:
        # The claim stays: a retry could send a duplicate. Recorded, loudly, for a human.
        log.error(
            "step %s/%s: delivery uncertain, not retried (the provider may have accepted "
            "it; check its activity log): %s",
            sequence_id,
            step_id,
            exc,
        )
        _log_outcome(rt, sequence_id, step_id, "uncertain", str(exc))
        return Delivery(Result.UNCERTAIN)
    rt.store.release_send(sequence_id, step_id, owner, committed=True)
    return Delivery(Result.DEFERRED, str(exc), cause=exc)


def _rejected(
    rt: Runtime, sequence_id: str, step_id: str, email: str, exc: RecipientRejected
) -> Delivery:
    """Permanent for this address: never retried, and never mailed again."""
    rt.store.mark_sent(sequence_id, step_id, "rejected")
    rt.store.suppress(email, exc.reason)
    _log_outcome(rt, sequence_id, step_id, "rejected", str(exc))
    log.warning(
        "step %s/%s: %s rejected (%s), address suppressed: %s",
        sequence_id,
        step_id,
        mask_email(email),
        exc.reason,
        exc,
    )
    return Delivery(Result.REJECTED)


def _config_error(
    rt: Runtime,
    sequence_id: str,
    step_id: str,
    owner: str | None,
    stream: str,
    exc: MailConfigError,
) -> None:
    """Our configuration is wrong: show it on /healthz. The step's job then fails at once
    (no retry can fix it) and waits in RQ's failed registry for `jobs retry-failed`."""
    rt.store.release_send(sequence_id, step_id, owner, committed=True)
    rt.store.record_send_error(
        {
            "transport": rt.settings.mail_transport,
            "stream": stream,
            "error": str(exc),
            "at": repr(time.time()),
            "sequence": sequence_id,
            "step": step_id,
        }
    )
    log.error(
        "MAIL CONFIGURATION ERROR (%s), step %s/%s not sent and kept for "
        "`flask --app hooks jobs retry-failed` once fixed: %s",
        rt.settings.mail_transport,
        sequence_id,
        step_id,
        exc,
    )


def _log_outcome(rt: Runtime, sequence_id: str, step_id: str, outcome: str, detail: str) -> None:
    rt.store.log_send(
        {
            "sequence": sequence_id,
            "step": step_id,
            "transport": rt.transport.name,
            "outcome": outcome,
            "detail": detail[:300],
            "at": repr(time.time()),
        }
    )
