"""Optional notifications: each cancellation and each survey answer, posted as
`{"text": ...}` to FAREWELL_NOTIFY_URL (a Slack incoming webhook, or any URL that takes
that JSON).

Sent by their own RQ jobs, with a timeout and RQ retries, so a slow or broken chat never
delays or blocks an email. Survey answers are collapsed per sequence: at most one
notification an hour; answers resubmitted within that hour make one follow-up at its end,
which posts the answer as it then stands (the latest wins). Messages mask the member's
address; logs never show the URL (a Slack webhook URL is a secret).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from . import throttle
from .privacy import mask_email
from .runtime import runtime
from .settings import Settings

log = logging.getLogger(__name__)

NOTIFY_RETRY = Retry(max=5, interval=[10, 60, 300, 900, 3600])
TIMEOUT = (3.05, 5)  # connect, read (seconds): a slow chat must not hold the worker
COMMENT_PREVIEW = 300
ANSWER_INTERVAL = 3600  # at most one survey-answer notification per sequence this often
ANSWER_THROTTLE = "notify-answer"


class NotifyFailed(RuntimeError):
    """The notification URL did not accept the message; RQ retries the job."""


# --- messages (pure) -----------------------------------------------------------------------


def chat_escape(text: str) -> str:
    """Slack reads &, < and > as markup; escape them so members' words stay words."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cancellation_text(email: str, membership: str, source: str) -> str:
    who = mask_email(email) if email else "A member"
    what = f"cancelled {membership}" if membership else "cancelled"
    return chat_escape(f"Cancellation: {who} {what} (via {source}).")


def answer_text(
    email: str, membership: str, reason: str, comment: str, no_email: bool, updated: bool
) -> str:
    who = mask_email(email) if email else "a member"
    head = "Survey answer updated" if updated else "Survey answer"
    parts = [f"{head} from {who}" + (f" ({membership})" if membership else "") + ":"]
    parts.append(reason or "no reason picked")
    if comment.strip():
        preview = comment.strip()
        if len(preview) > COMMENT_PREVIEW:
            preview = preview[: COMMENT_PREVIEW - 1] + "…"
        parts.append(f"“{preview}”")
    if no_email:
        parts.append("(asked not to be emailed again)")
    return chat_escape(" ".join(parts))


# --- sending -------------------------------------------------------------------------------


def post(url: str, text: str) -> None:
    # Notifications are a few per cancellation: a fresh connection each is fine.
    try:
        response = requests.post(url, json={"text": text}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        # requests' messages quote the URL's path (a Slack webhook's secret part), and a
        # chained exception would print them in RQ's traceback: name the host only.
        raise NotifyFailed(f"{urlsplit(url).hostname}: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise NotifyFailed(f"{urlsplit(url).hostname} answered HTTP {response.status_code}")


def notify_cancellation(event_id: str) -> str:
    """RQ job: tell the owner about one cancellation."""
    rt = runtime()
    if not rt.settings.notify_url:
        return "skipped: FAREWELL_NOTIFY_URL is not set"
    record = rt.store.load_cancellation(event_id)
    if record is None:
        return "skipped: no such cancellation"
    email = rt.store.member_field(record.member_key, "email") or ""
    membership = record.membership_title or record.membership_id
    post(rt.settings.notify_url, cancellation_text(email, membership, record.source))
    return "posted"


def notify_answer(sequence_id: str, updated: bool = False, follow_up: bool = False) -> str:
    """RQ job: tell the owner about a survey answer (as it stands when the job runs). A
    follow-up (answers resubmitted within the hour) starts the next hour's window."""
    rt = runtime()
    if not rt.settings.notify_url:
        return "skipped: FAREWELL_NOTIFY_URL is not set"
    if follow_up:
        throttle.restart_window(
            rt.store.redis, ANSWER_THROTTLE, sequence_id, ANSWER_INTERVAL, time.time()
        )
    seq = rt.store.load_sequence(sequence_id)
    feedback = rt.store.load_feedback(sequence_id)
    if seq is None or feedback is None:
        return "skipped: answer or sequence gone"
    email = rt.store.member_field(seq.member_key, "email") or ""
    labels = {r.id: r.label(rt.settings.default_locale) for r in rt.reasons}
    text = answer_text(
        email,
        seq.membership_title or seq.membership_id,
        labels.get(feedback.reason, feedback.reason),
        feedback.comment,
        feedback.no_email,
        updated,
    )
    post(rt.settings.notify_url, text)
    return "posted"


# --- enqueueing ----------------------------------------------------------------------------


def enqueue_cancellation(queue: Queue, settings: Settings, event_id: str) -> bool:
    return _enqueue(
        queue, settings, "notify_cancellation", (event_id,), f"notify-cancel-{event_id}"
    )


def enqueue_answer(
    queue: Queue, settings: Settings, sequence_id: str, answered_at: float, updated: bool
) -> bool:
    """Notify now if no answer of this sequence was notified this hour; else make sure one
    follow-up runs when the hour ends (resubmitting a form 15 times is one message, not 15)."""
    if not settings.notify_url:
        return False
    window = throttle.open_window(
        queue.connection, ANSWER_THROTTLE, sequence_id, ANSWER_INTERVAL, answered_at
    )
    if window.opened:
        job_id = f"notify-answer-{sequence_id}-{int(answered_at * 1000)}"
        return _enqueue(queue, settings, "notify_answer", (sequence_id, updated), job_id)
    job_id = f"notify-answer-{sequence_id}-after-{int(window.ends_at * 1000)}"
    at = datetime.fromtimestamp(window.ends_at, UTC)
    return _enqueue(queue, settings, "notify_answer", (sequence_id, True, True), job_id, at)


def _enqueue(
    queue: Queue,
    settings: Settings,
    func: str,
    args: tuple,
    job_id: str,
    at: datetime | None = None,
) -> bool:
    if not settings.notify_url:
        return False
    job = queue.create_job(
        f"worker.notify.{func}",
        args=args,
        job_id=job_id,
        retry=NOTIFY_RETRY,
        result_ttl=7 * 24 * 3600,
        failure_ttl=30 * 24 * 3600,
    )
    try:
        if at is None:
            queue.enqueue_job(job, unique=True)
        else:
            queue.schedule_job(job, at, unique=True)
    except DuplicateJobError:
        return False
    return True
