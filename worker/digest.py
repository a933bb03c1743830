"""The owner's weekly digest: last week's cancellations, lost MRR, top reasons, new
comments, win-backs and what they recovered, with a link to the dashboard.

Opt-in with FAREWELL_DIGEST_TO. It goes out once a week on FAREWELL_DIGEST_DAY at
FAREWELL_DIGEST_HOUR in FAREWELL_TIMEZONE, covering the seven days (Monday to Sunday, UTC
dates) before the week it is sent in.

Scheduling: one RQ job per week, `digest-<ISO week>`, scheduled with the public
`Queue.enqueue_at`; each run schedules the next, and every worker start makes sure the next
one is scheduled (a restart, a lost job or a changed setting never leaves a week out). RQ's
own cron (`rq cron`, RQ 2.5+) was not used: it needs a process of its own and computes
times in UTC, so "Monday 8:00 in Sao Paulo" would drift with daylight saving. A week is
sent at most once: the job first claims `digest:<week>` (SET NX); a second job for the same
week (two workers starting at once, a retry) finds the claim and sends nothing.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from .insights import Amounts, Filters, Insights, compute, gather
from .mail.message import OutgoingEmail
from .render import format_date, format_money
from .runtime import Runtime, runtime
from .settings import DIGEST_DAYS, Settings
from .store.keys import PREFIX

log = logging.getLogger(__name__)
DIGEST_JOB = "worker.digest.send_digest"
CLAIM_TTL = 60 * 24 * 3600  # long past the week it guards
TOP_REASONS = 3
COMMENTS_SHOWN = 5


def claim_key(week: str) -> str:
    return f"{PREFIX}digest:{week}"


def week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_monday(week: str) -> date:
    """The Monday of an ISO week label like 2026-W49."""
    year, _, number = week.partition("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def job_id(week: str) -> str:
    return f"digest-{week}"


def next_send_at(now: datetime, weekday: int, hour: int, tz: ZoneInfo) -> datetime:
    """The first `weekday` (0 = Monday) at `hour`:00 local time strictly after `now`, in
    UTC. Pure."""
    local = now.astimezone(tz)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    for _ in range(3):
        candidate = datetime.combine(day, time(hour), tzinfo=tz)
        if candidate > now:
            return candidate.astimezone(UTC)
        day += timedelta(days=7)
    raise AssertionError("unreachable: a later week always comes")


def period_before(sent_on: date) -> tuple[date, date]:
    """The Monday-to-Sunday week before the one `sent_on` falls in."""
    monday = sent_on - timedelta(days=sent_on.weekday())
    return monday - timedelta(days=7), monday - timedelta(days=1)


@dataclass(frozen=True)
class Digest:
    subject: str
    text: str
    html: str


# The digest's words per locale (FAREWELL_DIGEST_LOCALE, else FAREWELL_DEFAULT_LOCALE).
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Farewell weekly digest for {site}: {since} to {until} (UTC)",
        "cancellations": "Cancellations:",
        "lost": "Lost MRR:",
        "unpriced": " ({n} without a price)",
        "answers": "Survey answers:",
        "answers_value": "{answered} of {asked} asked",
        "winbacks": "Win-backs sent:",
        "clicks": "Rejoin clicks:",
        "won": "Won back:",
        "recovered": " (recovered {money} MRR)",
        "top": "Top reasons:",
        "reason_mrr": "({money} MRR)",
        "none": "(none)",
        "comments": "New comments: {n}",
        "erased": "(erased)",
        "no_reason": "no reason",
        "dashboard": "Dashboard: {url}",
        "subject_one": "{site}: 1 cancellation, {money} MRR lost last week",
        "subject_many": "{site}: {n} cancellations, {money} MRR lost last week",
    },
    "pt_BR": {
        "title": "Resumo semanal do Farewell para {site}: de {since} a {until} (UTC)",
        "cancellations": "Cancelamentos:",
        "lost": "MRR perdido:",
        "unpriced": " ({n} sem preço)",
        "answers": "Respostas à pesquisa:",
        "answers_value": "{answered} de {asked} perguntados",
        "winbacks": "Win-backs enviados:",
        "clicks": "Cliques para voltar:",
        "won": "Reconquistados:",
        "recovered": " ({money} de MRR recuperado)",
        "top": "Principais motivos:",
        "reason_mrr": "({money} de MRR)",
        "none": "(nenhum)",
        "comments": "Novos comentários: {n}",
        "erased": "(apagado)",
        "no_reason": "sem motivo",
        "dashboard": "Painel: {url}",
        "subject_one": "{site}: 1 cancelamento, {money} de MRR perdido na semana passada",
        "subject_many": "{site}: {n} cancelamentos, {money} de MRR perdido na semana passada",
    },
}
LABEL_WIDTH = 22  # the figures line up after the longest label


def digest_locale(settings: Settings) -> str:
    return settings.digest_locale or settings.default_locale


def _money(amounts: Amounts, locale: str, currency: str) -> str:
    return " + ".join(format_money(v, c, locale) for c, v in amounts.items()) or format_money(
        0, currency, locale
    )


def compose_digest(
    ins: Insights,
    since: date,
    until: date,
    dashboard_url: str,
    site_name: str,
    locale: str = "en",
    currency: str = "USD",
) -> Digest:
    """The digest's words from the week's figures, in `locale` (dates and money too). Pure."""
    w = _WORDS.get(locale, _WORDS["en"])

    def money(amounts: Amounts) -> str:
        return _money(amounts, locale, currency)

    def row(label: str, value: object) -> str:
        return f"{w[label]:<{LABEL_WIDTH}}{value}"

    title = w["title"].format(
        site=site_name, since=format_date(since, locale), until=format_date(until, locale)
    )
    lines = [
        title,
        "",
        row("cancellations", ins.cancellations),
        row("lost", money(ins.lost_mrr))
        + (w["unpriced"].format(n=ins.mrr_unknown) if ins.mrr_unknown else ""),
        row("answers", w["answers_value"].format(answered=ins.answered, asked=ins.asked)),
        row("winbacks", ins.winbacks_sent),
        row("clicks", ins.rejoin_clicks),
        row("won", ins.won_back_after_winback)
        + w["recovered"].format(money=money(ins.recovered_mrr)),
        "",
        w["top"],
    ]
    top = [r for r in ins.reasons if r.count][:TOP_REASONS]
    lines += [
        f"  {r.count}  {r.label}  " + w["reason_mrr"].format(money=money(r.mrr)) for r in top
    ] or [f"  {w['none']}"]
    lines += ["", w["comments"].format(n=len(ins.comments))]
    for c in ins.comments[:COMMENTS_SHOWN]:
        who = c.email or w["erased"]
        lines.append(f"  - {who}, {c.reason_label or w['no_reason']}: {c.text}")
    lines += ["", w["dashboard"].format(url=dashboard_url)]
    text = "\n".join(lines) + "\n"
    body = html.escape(text).replace(html.escape(dashboard_url), _link(dashboard_url))
    page = (
        f'<!DOCTYPE html><html lang="{locale.replace("_", "-")}"><meta charset="utf-8"><body>'
        f'<pre style="font: 14px/1.5 monospace; white-space: pre-wrap">{body}</pre></body></html>'
    )
    plural = "subject_one" if ins.cancellations == 1 else "subject_many"
    subject = w[plural].format(site=site_name, n=ins.cancellations, money=money(ins.lost_mrr))
    return Digest(subject, text, page)


def _link(url: str) -> str:
    return f'<a href="{html.escape(url)}">{html.escape(url)}</a>'


def dashboard_url(settings: Settings, since: date, until: date) -> str:
    query = urlencode({"from": since.isoformat(), "to": until.isoformat()})
    return f"{settings.base_url.rstrip('/')}/admin?{query}"


def ensure_scheduled(queue: Queue, settings: Settings, now: datetime) -> str | None:
    """Schedule the next digest unless its job already exists; its week label, or None
    when the digest is off."""
    if not settings.digest_to:
        return None
    tz = ZoneInfo(settings.timezone)
    at = next_send_at(now, DIGEST_DAYS.index(settings.digest_day), settings.digest_hour, tz)
    week = week_label(at.astimezone(tz).date())
    if _job_exists(queue.connection, job_id(week)):
        return week
    queue.enqueue_at(at, DIGEST_JOB, week, job_id=job_id(week), result_ttl=0)
    log.info("weekly digest for %s scheduled at %s", week, at.isoformat())
    return week


def _job_exists(connection: Redis, job: str) -> bool:
    try:
        Job.fetch(job, connection=connection)
    except NoSuchJobError:
        return False
    return True


def send_digest(week: str) -> str:
    """The job: send `week`'s digest once, then schedule the next week's."""
    rt = runtime()
    try:
        return _send_once(rt, week)
    finally:
        # The next one falls in a later week than this one, even when this job ran early
        # or late (a worker down for days).
        following = week_monday(week) + timedelta(days=7)
        start = datetime.combine(following, time(), tzinfo=ZoneInfo(rt.settings.timezone))
        ensure_scheduled(
            rt.queue, rt.settings, max(datetime.now(UTC), start - timedelta(seconds=1))
        )


def _send_once(rt: Runtime, week: str) -> str:
    settings = rt.settings
    if not settings.digest_to:
        return "off"
    redis = rt.store.redis
    if not redis.set(claim_key(week), "sending", nx=True, ex=CLAIM_TTL):
        log.info("weekly digest %s: already sent, nothing to do", week)
        return "already sent"
    try:
        since, until = period_before(week_monday(week))
        filters = Filters(since=since, until=until)
        locale = digest_locale(settings)
        entries = gather(rt.store, filters)
        ins = compute(entries, filters, rt.reasons, locale, settings.default_locale)
        url = dashboard_url(settings, since, until)
        digest = compose_digest(
            ins, since, until, url, settings.site_name_in(locale), locale, settings.currency
        )
        host = settings.base_url.split("//", 1)[-1].split("/", 1)[0].split(":")[0] or "localhost"
        message_id = rt.transport.send(
            OutgoingEmail(
                sender=settings.mail_from,
                to=settings.digest_to,
                subject=digest.subject,
                html=digest.html,
                text=digest.text,
                message_id=f"<digest.{week}@{host}>",
                tags={"digest": week},
            )
        )
    except Exception:
        redis.delete(claim_key(week))  # nothing went out: a retry may send it
        raise
    redis.set(claim_key(week), f"sent:{message_id}", ex=CLAIM_TTL)
    log.info("weekly digest %s sent (%d cancellations)", week, ins.cancellations)
    return f"sent {week}"
