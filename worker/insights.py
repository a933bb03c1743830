"""What the owner sees: figures computed from cancellation records, survey answers and
sequence outcomes. Pure but for `gather`, which loads the input from the store (one read
per kind of record); no Flask.

All dates are UTC. A week starts on Monday (ISO 8601).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from .reasons import Reason
from .store import Cancellation, Feedback, SequenceOutcome, Store, Suppression, WinbackSteps

UNSUBSCRIBED = "unsubscribed"  # the suppression reason the unsubscribe links write

# More weeks than this in one chart says nothing more; the newest ones are kept.
MAX_WEEKS = 260
# Spreadsheet programs run cells starting with these as formulas (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

EXPORT_COLUMNS = (
    "cancelled_at",
    "email",
    "membership_id",
    "membership",
    "source",
    "survey_sent",
    "reason_id",
    "reason",
    "comment",
    "answered_at",
    "no_email",
    "outcome",
    "came_back_at",
    "mrr",
    "currency",
    "winback_sent",
    "rejoin_clicked",
)


class FilterError(ValueError):
    """A filter value the owner typed is not usable; the message says why."""


@dataclass(frozen=True)
class Filters:
    membership_id: str = ""
    since: date | None = None  # inclusive
    until: date | None = None  # inclusive

    def window(self) -> tuple[float | None, float | None]:
        """[start, end) in epoch seconds, None for open ends."""
        start = _midnight(self.since) if self.since else None
        end = _midnight(self.until + timedelta(days=1)) if self.until else None
        return start, end

    def matches(self, record: Cancellation) -> bool:
        if self.membership_id and record.membership_id != self.membership_id:
            return False
        start, end = self.window()
        return (start is None or record.at >= start) and (end is None or record.at < end)


def count_unsubscribes(suppressions: Iterable[Suppression], filters: Filters) -> int:
    """Addresses that unsubscribed through an email's link in the filter's dates, of the
    filter's membership when one is chosen (the link's sequence names it; unsubscribes
    recorded before that was kept have none, so they count only without a filter)."""
    start, end = filters.window()
    return sum(
        1
        for s in suppressions
        if s.reason == UNSUBSCRIBED
        and (not filters.membership_id or s.membership_id == filters.membership_id)
        and (start is None or s.at >= start)
        and (end is None or s.at < end)
    )


def previous_period(filters: Filters) -> Filters | None:
    """The period of the same length just before a closed one (None when a bound is open)."""
    if not (filters.since and filters.until):
        return None
    length = filters.until - filters.since + timedelta(days=1)
    try:
        start = filters.since - length
    except OverflowError:  # a period reaching back before year 1 has none before it
        return None
    return Filters(filters.membership_id, start, filters.since - timedelta(days=1))


def parse_filters(membership: str | None, since: str | None, until: str | None) -> Filters:
    """Filters from form or command-line text: dates as YYYY-MM-DD, blanks ignored."""
    result = Filters(
        membership_id=(membership or "").strip(),
        since=_parse_date("from", since),
        until=_parse_date("to", until),
    )
    if result.since and result.until and result.since > result.until:
        raise FilterError(f"the 'from' date ({result.since}) is after the 'to' date")
    return result


@dataclass(frozen=True)
class Entry:
    """One cancellation with what followed it."""

    cancellation: Cancellation
    sequence: SequenceOutcome | None  # None: no sequence started (cooldown) or erased
    feedback: Feedback | None
    email: str = ""  # "" once the member is erased
    rejoin_clicked: bool = False  # the win-back's rejoin button was followed
    winbacks: WinbackSteps = field(default_factory=WinbackSteps)  # per email (step)

    @property
    def asked(self) -> bool:
        """A feedback request went out (a sequence started), or an answer came anyway."""
        return self.sequence is not None or self.feedback is not None

    @property
    def outcome(self) -> str:
        return self.sequence.outcome if self.sequence else ""

    @property
    def winback_sent(self) -> bool:
        return bool(self.sequence and self.sequence.marketing_sent_at)

    @property
    def won_back_by(self) -> str:
        """The win-back email (step) that won the member back: the last one sent before
        they came back; "" when not won back or sent before emails were counted per step."""
        seq = self.sequence
        if seq is None or self.outcome != "won_back" or seq.came_back_at is None:
            return ""
        before = [(at, step) for step, at in self.winbacks.sent.items() if at <= seq.came_back_at]
        return max(before)[1] if before else ""


# Money per currency: sums never mix currencies (no exchange rates here).
Amounts = dict[str, Decimal]


def add_mrr(entries: Iterable[Entry]) -> Amounts:
    """The entries' lost MRR per currency, largest first; unknown MRR adds nothing."""
    totals: Amounts = {}
    for e in entries:
        c = e.cancellation
        if c.mrr is not None:
            totals[c.currency] = totals.get(c.currency, Decimal(0)) + c.mrr
    return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class Week:
    start: date  # the Monday
    count: int

    @property
    def label(self) -> str:
        year, week, _ = self.start.isocalendar()
        return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class MonthReasons:
    """One calendar month (UTC) of answers: count per reason id, in the trend's order."""

    month: date  # the 1st
    counts: tuple[tuple[str, int], ...]

    @property
    def label(self) -> str:
        return self.month.strftime("%b %Y")

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)


@dataclass(frozen=True)
class ReasonCount:
    id: str
    label: str
    count: int
    share: float  # of the answers that name a reason; 0.0 when there are none
    mrr: Amounts = field(default_factory=dict)  # lost with the cancellations giving it


@dataclass(frozen=True)
class MembershipLoss:
    id: str
    title: str
    count: int
    mrr: Amounts


@dataclass(frozen=True)
class EmailFunnel:
    """The win-back funnel of one marketing email (playbook step)."""

    step: str
    sent: int
    rejoin_clicks: int
    won_back: int  # came back within FAREWELL_WON_BACK_DAYS, this email the last before
    recovered_mrr: Amounts


@dataclass(frozen=True)
class Comment:
    at: datetime  # when the member answered
    reason_id: str
    reason_label: str
    membership: str
    text: str
    email: str = ""  # who wrote it ("" once erased); the owner's own member
    member_key: str = ""  # to look up their name for the page


@dataclass(frozen=True)
class Insights:
    filters: Filters
    cancellations: int
    asked: int
    answered: int
    won_back: int  # came back soon after a win-back email (outcome won_back)
    came_back: int  # came back on their own (outcome came_back)
    no_email: int  # asked not to be emailed again
    weeks: list[Week] = field(default_factory=list)
    reasons: list[ReasonCount] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    lost_mrr: Amounts = field(default_factory=dict)
    mrr_unknown: int = 0  # cancellations whose source sent no usable price
    memberships: list[MembershipLoss] = field(default_factory=list)
    # The win-back funnel: emails sent, rejoin buttons followed, won back, MRR recovered.
    winbacks_sent: int = 0
    rejoin_clicks: int = 0
    won_back_after_winback: int = 0
    recovered_mrr: Amounts = field(default_factory=dict)
    months: list[MonthReasons] = field(default_factory=list)  # the reasons' trend
    funnel: list[EmailFunnel] = field(default_factory=list)  # the win-back funnel per email

    @property
    def response_rate(self) -> float | None:
        return self.answered / self.asked if self.asked else None

    @property
    def won_back_rate(self) -> float | None:
        """Won back over win-back emails sent (not over all cancellations)."""
        return self.won_back_after_winback / self.winbacks_sent if self.winbacks_sent else None


def gather(store: Store, filters: Filters) -> list[Entry]:
    """The records in the filter's window, each with its sequence, answer and address."""
    start, end = filters.window()
    records = store.cancellations(start, end, filters.membership_id)
    seq_ids = [c.sequence_id for c in records]
    sequences = store.sequence_outcomes(seq_ids)
    answers = store.load_many_feedback(seq_ids)
    emails = store.member_emails(sorted({c.member_key for c in records}))
    winbacks = store.winback_steps([sid for sid, s in sequences.items() if s.marketing_sent_at])
    return [
        Entry(
            cancellation=c,
            sequence=sequences.get(c.sequence_id),
            feedback=answers.get(c.sequence_id),
            email=emails.get(c.member_key, ""),
            rejoin_clicked=bool(c.sequence_id in winbacks and winbacks[c.sequence_id].clicked),
            winbacks=winbacks.get(c.sequence_id, WinbackSteps()),
        )
        for c in records
    ]


def compute(
    entries: Iterable[Entry],
    filters: Filters,
    reasons: list[Reason],
    locale: str = "en",
    default_locale: str = "en",
) -> Insights:
    chosen = [e for e in entries if filters.matches(e.cancellation)]
    answers = [e for e in chosen if e.feedback is not None]
    labels = reason_labels(reasons, locale, default_locale)
    winbacks = [e for e in chosen if e.winback_sent]
    won = [e for e in winbacks if e.outcome == "won_back"]
    return Insights(
        filters=filters,
        cancellations=len(chosen),
        asked=sum(1 for e in chosen if e.asked),
        answered=len(answers),
        won_back=sum(1 for e in chosen if e.outcome == "won_back"),
        came_back=sum(1 for e in chosen if e.outcome == "came_back"),
        no_email=sum(1 for e in answers if e.feedback and e.feedback.no_email),
        weeks=weekly(chosen, filters),
        reasons=reason_breakdown(answers, reasons, labels),
        comments=comments(answers, labels),
        lost_mrr=add_mrr(chosen),
        mrr_unknown=sum(1 for e in chosen if e.cancellation.mrr is None),
        memberships=membership_losses(chosen),
        winbacks_sent=len(winbacks),
        rejoin_clicks=sum(1 for e in winbacks if e.rejoin_clicked),
        won_back_after_winback=len(won),
        recovered_mrr=add_mrr(won),
        months=monthly_reasons(answers, filters),
        funnel=email_funnel(winbacks),
    )


def email_funnel(winbacks: list[Entry]) -> list[EmailFunnel]:
    """The win-back funnel per marketing email (step), in the order they go out (by
    their average delay after the cancellation). A click or a comeback counts for the
    email whose button or offer it followed; one pass over the entries."""
    sent: dict[str, list[float]] = {}
    clicks: Counter[str] = Counter()
    won: dict[str, list[Entry]] = {}
    for e in winbacks:
        for step, at in e.winbacks.sent.items():
            sent.setdefault(step, []).append(at - e.cancellation.at)
        clicks.update(step for step in e.winbacks.clicked if step in e.winbacks.sent)
        if by := e.won_back_by:
            won.setdefault(by, []).append(e)
    found = [
        EmailFunnel(
            step,
            len(delays),
            clicks[step],
            len(won.get(step, [])),
            add_mrr(won.get(step, [])),
        )
        for step, delays in sent.items()
    ]
    delay = {step: sum(d) / len(d) for step, d in sent.items()}
    return sorted(found, key=lambda f: (delay[f.step], f.step))


# The trend shows this many reasons (the most given) and folds the rest into "other".
TREND_REASONS = 5
TREND_OTHER = "_other"
MAX_MONTHS = 36


def monthly_reasons(answers: list[Entry], filters: Filters) -> list[MonthReasons]:
    """Answers per reason per month of cancellation, zero months included, over the
    filter's dates (or the data's span); the TREND_REASONS most given reasons by id, the
    rest as TREND_OTHER."""
    picked = [e for e in answers if e.feedback and e.feedback.reason]
    days = [_day(e.cancellation.at) for e in picked]
    first = filters.since or (min(days) if days else None)
    last = filters.until or (max(days) if days else None)
    if first is None or last is None:
        return []
    totals = Counter(e.feedback.reason for e in picked if e.feedback)
    top = [rid for rid, _ in totals.most_common(TREND_REASONS)]
    keys = top + ([TREND_OTHER] if len(totals) > len(top) else [])
    per_month: dict[date, Counter[str]] = {}
    for e, day in zip(picked, days, strict=True):
        rid = e.feedback.reason if e.feedback and e.feedback.reason in top else TREND_OTHER
        per_month.setdefault(day.replace(day=1), Counter())[rid] += 1
    months = []
    current, end = first.replace(day=1), last.replace(day=1)
    while current <= end:
        counts = per_month.get(current, Counter())
        months.append(MonthReasons(current, tuple((k, counts[k]) for k in keys)))
        current = (current + timedelta(days=32)).replace(day=1)
    return months[-MAX_MONTHS:]


def membership_losses(entries: list[Entry]) -> list[MembershipLoss]:
    """Cancellations and lost MRR per membership, most cancellations first."""
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.cancellation.membership_id, []).append(e)
    found = [
        MembershipLoss(
            mid,
            next(
                (e.cancellation.membership_title for e in group if e.cancellation.membership_title),
                mid,
            ),
            len(group),
            add_mrr(group),
        )
        for mid, group in groups.items()
    ]
    return sorted(found, key=lambda m: (-m.count, m.title.lower()))


def reason_labels(reasons: list[Reason], locale: str, default_locale: str = "en") -> dict[str, str]:
    return {r.id: r.label(locale, default_locale) for r in reasons}


def weekly(entries: list[Entry], filters: Filters) -> list[Week]:
    """Cancellations per ISO week, zero weeks included, over the filter's dates (or the
    data's span when a bound is open)."""
    days = [_day(e.cancellation.at) for e in entries]
    first = filters.since or (min(days) if days else None)
    last = filters.until or (max(days) if days else None)
    if first is None or last is None:
        return []
    counts = Counter(_monday(d) for d in days)
    start, end = _monday(first), _monday(last)
    if (end - start).days // 7 >= MAX_WEEKS:
        start = end - timedelta(weeks=MAX_WEEKS - 1)
    weeks = []
    current = start
    while current <= end:
        weeks.append(Week(current, counts.get(current, 0)))
        current += timedelta(weeks=1)
    return weeks


def reason_breakdown(
    answers: list[Entry], reasons: list[Reason], labels: dict[str, str]
) -> list[ReasonCount]:
    """Every configured reason (zeros included), then any stored id no longer configured,
    so history never disappears from view; most answers first, ties in configured order.
    Each with the MRR lost with the cancellations that gave it."""
    counts = Counter(e.feedback.reason for e in answers if e.feedback and e.feedback.reason)
    total = sum(counts.values())
    ids = [r.id for r in reasons] + sorted(set(counts) - {r.id for r in reasons})
    found = [
        ReasonCount(
            rid,
            labels.get(rid, rid),
            counts[rid],
            counts[rid] / total if total else 0.0,
            add_mrr(e for e in answers if e.feedback and e.feedback.reason == rid),
        )
        for rid in ids
    ]
    return sorted(found, key=lambda r: -r.count)  # stable: ties keep the configured order


def comments(answers: list[Entry], labels: dict[str, str]) -> list[Comment]:
    """Non-empty comments, newest answer first."""
    found = [
        Comment(
            at=datetime.fromtimestamp(e.feedback.at, UTC),
            reason_id=e.feedback.reason,
            reason_label=labels.get(e.feedback.reason, e.feedback.reason),
            membership=e.cancellation.membership_title or e.cancellation.membership_id,
            text=e.feedback.comment,
            email=e.email,
            member_key=e.cancellation.member_key,
        )
        for e in answers
        if e.feedback and e.feedback.comment.strip()
    ]
    return sorted(found, key=lambda c: c.at, reverse=True)


def export_rows(
    entries: Iterable[Entry],
    filters: Filters,
    reasons: list[Reason],
    locale: str = "en",
    default_locale: str = "en",
) -> Iterator[list[str]]:
    """The CSV export: a header, then one row per cancellation, oldest first, every cell
    safe to open in a spreadsheet."""
    labels = reason_labels(reasons, locale, default_locale)
    yield list(EXPORT_COLUMNS)
    chosen = sorted(
        (e for e in entries if filters.matches(e.cancellation)), key=lambda e: e.cancellation.at
    )
    for e in chosen:
        c, fb, seq = e.cancellation, e.feedback, e.sequence
        reason = fb.reason if fb else ""
        row = [
            _iso(c.at),
            e.email,
            c.membership_id,
            c.membership_title,
            c.source,
            "yes" if e.asked else "no",
            reason,
            labels.get(reason, reason),
            fb.comment if fb else "",
            _iso(fb.at) if fb else "",
            ("yes" if fb.no_email else "no") if fb else "",
            e.outcome,
            _iso(seq.came_back_at) if seq and seq.came_back_at else "",
            str(c.mrr) if c.mrr is not None else "",
            c.currency if c.mrr is not None else "",
            "yes" if e.winback_sent else "no",
            "yes" if e.rejoin_clicked else "no",
        ]
        yield [csv_safe(cell) for cell in row]


def csv_safe(value: str) -> str:
    """Quote a cell a spreadsheet would otherwise evaluate as a formula."""
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value


def _parse_date(name: str, value: str | None) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"the '{name}' date must look like 2026-01-31, not {value!r}") from None


def _midnight(day: date) -> float:
    return datetime.combine(day, time(), tzinfo=UTC).timestamp()


def _day(ts: float) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
