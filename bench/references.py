"""The two references measured in the same run, and the Redis memory figures.

- raw transport: real feedback-request messages, rendered and MIME-encoded beforehand,
  pushed through one reused smtplib connection to the same sink;
- Redis memory per pending scheduled step: schedule many delayed steps, read the
  `INFO memory` delta.
"""

from __future__ import annotations

import smtplib
import time
from datetime import timedelta
from email.utils import parseaddr

from redis import Redis
from rq.job import Job

from worker.compose import compose
from worker.events import Member
from worker.mail.message import to_mime
from worker.playbook import load_playbook
from worker.queues import make_queue, schedule_step, step_job_id
from worker.reasons import load_reasons
from worker.render import Renderer
from worker.settings import Settings
from worker.store import Sequence

from .load import member_email


def prerender(count: int, settings: Settings) -> list[tuple[str, str, bytes]]:
    """`count` feedback-request messages as the worker would send them: (from, to, bytes)."""
    renderer = Renderer(settings.templates_dir, settings.default_locale)
    step = load_playbook(settings.playbook_path).steps_for("3006")[0]
    reasons = load_reasons(settings.reasons_path)
    sender = parseaddr(settings.mail_from)[1]
    out = []
    for i in range(count):
        member = Member(email=f"raw-{member_email(i)}", id=str(i), first_name="Member")
        seq = Sequence(
            id=f"memberpress-raw{i:08d}",
            member_key=member.key,
            event_id=f"memberpress-raw{i:08d}",
            membership_id="3006",
            membership_title="Gold Club",
            locale="en",
            started_at=time.time(),
        )
        msg = to_mime(compose(settings, renderer, seq, member, step, reasons))
        out.append((sender, member.email, msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))))
    return out


def raw_transport(host: str, port: int, messages: list[tuple[str, str, bytes]]) -> float:
    """Messages per second through one reused SMTP connection (MAIL, RCPT, DATA each)."""
    conn = smtplib.SMTP(host, port, timeout=30)
    try:
        conn.ehlo()
        started = time.perf_counter()
        for sender, rcpt, data in messages:
            conn.sendmail(sender, [rcpt], data)
        elapsed = time.perf_counter() - started
    finally:
        conn.quit()
    return len(messages) / elapsed


def used_memory(redis: Redis) -> int:
    return int(redis.info("memory")["used_memory"])


def command_costs(redis: Redis) -> dict[str, tuple[int, float]]:
    """INFO commandstats: calls and CPU microseconds per command since CONFIG RESETSTAT."""
    costs = {}
    for name, stats in redis.info("commandstats").items():
        costs[name.removeprefix("cmdstat_")] = (int(stats["calls"]), float(stats["usec"]))
    return costs


def bytes_per_scheduled_step(redis_url: str, settings: Settings, count: int) -> float:
    """Redis bytes per pending delayed step (its RQ job hash + scheduled-registry entry).

    The steps are scheduled 30 days out, measured, then removed again.
    """
    queue = make_queue(Redis.from_url(redis_url), settings.queue_name)
    before = used_memory(queue.connection)
    ids = [f"memberpress-mem{i:016x}" for i in range(count)]
    for sequence_id in ids:
        schedule_step(queue, sequence_id, "winback_30d", timedelta(days=30))
    after = used_memory(queue.connection)
    pipe = queue.connection.pipeline(transaction=False)
    registry = queue.scheduled_job_registry
    for sequence_id in ids:
        job_id = step_job_id(sequence_id, "winback_30d")
        registry.remove(job_id, pipeline=pipe)
        pipe.delete(Job.key_for(job_id))
    pipe.execute()
    queue.connection.close()
    return (after - before) / count
