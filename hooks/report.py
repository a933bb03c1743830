"""`flask --app hooks report`: the dashboard's figures in the terminal."""

from __future__ import annotations

from unicodedata import category

import click
from flask.cli import with_appcontext

from worker.insights import (
    Amounts,
    FilterError,
    Insights,
    compute,
    count_unsubscribes,
    gather,
    parse_filters,
)

from .services import get_services

BAR_WIDTH = 30


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _amounts(amounts: Amounts) -> str:
    """'10.00 USD + 49.90 BRL': monthly revenue, one figure per currency."""
    if not amounts:
        return "-"
    return " + ".join(f"{value:,.2f} {currency}" for currency, value in sorted(amounts.items()))


def format_report(insights: Insights, membership_title: str = "", unsubscribed: int = 0) -> str:
    f = insights.filters
    scope = membership_title or f.membership_id or "all memberships"
    span = (
        f"{f.since or 'the beginning'} to {f.until or 'today'}"
        if f.since or f.until
        else "all time"
    )
    lines = [
        f"Farewell insights: {scope}, {span} (UTC)",
        "",
        f"Cancellations        {insights.cancellations}",
        f"Survey answered      {insights.answered} of {insights.asked} asked "
        f"({_pct(insights.response_rate)})",
        f"Won back             {insights.won_back} "
        f"({_pct(insights.won_back_rate)} of {insights.winbacks_sent} win-backs sent)",
        f"Came back on own     {insights.came_back}",
        f"Asked for no email   {insights.no_email}",
        f"Unsubscribed         {unsubscribed} (through an email's link)",
        f"Lost MRR             {_amounts(insights.lost_mrr)}"
        + (f" ({insights.mrr_unknown} without a price)" if insights.mrr_unknown else ""),
        f"Recovered MRR        {_amounts(insights.recovered_mrr)}",
        "",
        "Cancellations per week",
    ]
    top = max([w.count for w in insights.weeks] + [1])
    for w in insights.weeks:
        bar = "#" * round(BAR_WIDTH * w.count / top)
        lines.append(f"  {w.label}  {w.start.isoformat()}  {w.count:>4}  {bar}")
    if not insights.weeks:
        lines.append("  (none)")
    lines += ["", "Reasons"]
    width = max([len(r.label) for r in insights.reasons] + [10])
    for r in insights.reasons:
        lines.append(
            f"  {r.label:<{width}}  {r.count:>4}  {_pct(r.share):>4}  {_amounts(r.mrr)}  [{r.id}]"
        )
    lines += ["", "Lost by membership"]
    named = [(m.title or m.id or "(none)", m) for m in insights.memberships]
    width = max([len(name) for name, _ in named] + [10])
    for name, m in named:
        lines.append(f"  {name:<{width}}  {m.count:>4}  {_amounts(m.mrr)}")
    if not insights.memberships:
        lines.append("  (none)")
    lines += ["", "Win-back funnel per email (sent, rejoin clicks, came back, MRR recovered)"]
    for f in insights.funnel:
        lines.append(
            f"  {f.step}  {f.sent:>4}  {f.rejoin_clicks:>4}  {f.won_back:>4}  "
            f"{_amounts(f.recovered_mrr)}"
        )
    if not insights.funnel:
        lines.append("  (none)")
    lines += ["", "Comments (newest first)"]
    for c in insights.comments:
        # One line each, and no control characters: a comment must not drive the terminal.
        text = "".join("?" if category(ch) == "Cc" else ch for ch in " ".join(c.text.split()))
        reason = c.reason_label or "no reason"
        who = c.email or "erased member"
        lines.append(f"  {c.at.strftime('%Y-%m-%d')}  {who}  {reason} · {c.membership}: {text}")
    if not insights.comments:
        lines.append("  (none)")
    return "\n".join(lines)


@click.command("report")
@with_appcontext
@click.option("--membership", default="", help="Only this membership id.")
@click.option("--since", default="", metavar="YYYY-MM-DD", help="From this day (UTC, inclusive).")
@click.option("--until", default="", metavar="YYYY-MM-DD", help="To this day (UTC, inclusive).")
def report(membership: str, since: str, until: str) -> None:
    """Print the insights dashboard's figures: cancellations per week, reasons, survey
    response rate, lost and recovered revenue, the win-back funnel and comments."""
    try:
        filters = parse_filters(membership, since, until)
    except FilterError as exc:
        raise click.BadParameter(str(exc)) from exc
    services = get_services()
    locale = services.settings.default_locale
    insights = compute(gather(services.store, filters), filters, services.reasons, locale, locale)
    title = services.store.cancellation_memberships().get(filters.membership_id, "")
    unsubscribed = count_unsubscribes(services.store.suppressions(), filters)
    click.echo(format_report(insights, title, unsubscribed))
