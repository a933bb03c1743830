"""Server-rendered SVG charts for the admin: no JavaScript, no CDN, works offline.

Colours come from classes styled in site.css (inline styles are blocked by our CSP), so
the charts follow the page's light and dark themes. Pure functions returning Markup.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from worker.insights import TREND_OTHER, MonthReasons, Week

WIDTH, HEIGHT = 720, 240
# TOP leaves room for the count above the tallest bar at the phones' larger label size.
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 30, 28
MAX_X_LABELS = 8
MAX_BAR = 48  # a few weeks should not look like a wall


def _ticks(top: int) -> list[int]:
    """0, the top, and a middle line when it lands on a whole number."""
    ticks = [0, top]
    if top >= 2 and top % 2 == 0:
        ticks.insert(1, top // 2)
    return ticks


def weekly_bars(weeks: list[Week], title: str = "Cancellations per week") -> Markup:
    """A bar per ISO week, with a hover title per bar and an accessible summary."""
    total = sum(w.count for w in weeks)
    summary = (
        f"{total} cancellations over {len(weeks)} weeks"
        + (f", from {weeks[0].label} to {weeks[-1].label}" if weeks else "")
        + "."
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-weeks-title chart-weeks-desc" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-weeks-title">{escape(title)}</title>',
        f'<desc id="chart-weeks-desc">{escape(summary)}</desc>',
    ]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max([w.count for w in weeks] + [1])
    for tick in _ticks(top):
        y = TOP + plot_h - plot_h * tick / top
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    if not weeks:
        parts.append(
            f'<text class="axis" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            "No cancellations in this range</text></svg>"
        )
        return Markup("".join(parts))  # noqa: S704 - built from escaped parts
    slot = min(plot_w / len(weeks), MAX_BAR + 4)
    gap = min(4.0, slot * 0.2)
    every = max(1, -(-len(weeks) // MAX_X_LABELS))
    for i, week in enumerate(weeks):
        x = LEFT + i * slot + gap / 2
        h = plot_h * week.count / top
        y = TOP + plot_h - h
        label = f"{week.label} (from {week.start.isoformat()}): {week.count}"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot - gap:.1f}" '
            f'height="{h:.1f}" data-week="{week.label}" data-count="{week.count}">'
            f"<title>{escape(label)}</title></rect>"
        )
        if week.count and len(weeks) <= 26:
            parts.append(
                f'<text class="value" x="{x + (slot - gap) / 2:.1f}" y="{y - 3:.1f}" '
                f'text-anchor="middle">{week.count}</text>'
            )
        if i % every == 0:
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}">'
                f"{escape(week.start.strftime('%d %b'))}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built from escaped parts


def share_bar(share: float) -> Markup:
    """A small horizontal bar for a share in [0, 1]; decorative (the number is beside it)."""
    width = max(0.0, min(1.0, share)) * 100
    return Markup(  # noqa: S704 - numbers only
        '<svg class="meter" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true" '
        'xmlns="http://www.w3.org/2000/svg">'
        '<rect class="track" width="100" height="8"/>'
        f'<rect class="bar" width="{width:.1f}" height="8"/></svg>'
    )


ROW_H, BAR_H, LABEL_W, TREND_W = 26, 16, 70, 360


def reason_trend(months: list[MonthReasons], labels: dict[str, str]) -> Markup:
    """One stacked horizontal bar per month (a row each, so it stays readable at 375 px),
    a segment per reason, with a legend. Colours by segment class (site.css)."""
    keys = [k for k, _ in months[0].counts] if months else []
    names = {k: labels.get(k, k) if k != TREND_OTHER else "Other reasons" for k in keys}
    top = max([m.total for m in months] + [1])
    height = ROW_H * len(months) + 8
    summary = "; ".join(
        f"{m.label}: " + (", ".join(f"{names[k]} {n}" for k, n in m.counts if n) or "none")
        for m in months
    )
    parts = [
        f'<svg class="chart trend" viewBox="0 0 {TREND_W} {height}" role="img" '
        'aria-labelledby="chart-trend-title chart-trend-desc" xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-trend-title">Reasons per month</title>',
        f'<desc id="chart-trend-desc">{escape(summary)}.</desc>',
    ]
    plot = TREND_W - LABEL_W - 30
    for row, month in enumerate(months):
        y = 4 + row * ROW_H
        parts.append(f'<text class="axis" x="0" y="{y + BAR_H - 3}">{escape(month.label)}</text>')
        x = float(LABEL_W)
        for i, (key, count) in enumerate(month.counts):
            if not count:
                continue
            w = plot * count / top
            parts.append(
                f'<rect class="seg seg-{i}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{BAR_H}" '
                f'data-month="{month.month.isoformat()}" data-reason="{escape(key)}" '
                f'data-count="{count}"><title>{escape(f"{month.label}: {names[key]}, {count}")}'
                "</title></rect>"
            )
            x += w
        parts.append(
            f'<text class="value" x="{x + 4:.1f}" y="{y + BAR_H - 3}">{month.total}</text>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true" '
        f'xmlns="http://www.w3.org/2000/svg"><rect class="seg seg-{i}" width="10" height="10"/>'
        f"</svg> {escape(names[k])}</li>"
        for i, k in enumerate(keys)
    )
    return Markup("".join(parts) + f'<ul class="legend">{legend}</ul>')  # noqa: S704
