"""`/admin`: the owner's insights dashboard and `/admin/export.csv`, behind basic auth.

Filters come as GET parameters (`membership`, `from`, `to`; dates YYYY-MM-DD, UTC,
inclusive), so a filtered view is a link the owner can bookmark.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError

from worker.insights import (
    FilterError,
    Filters,
    Insights,
    compute,
    count_unsubscribes,
    export_rows,
    gather,
    parse_filters,
    previous_period,
)
from worker.playbook import PlaybookError, load_playbook
from worker.render import format_money
from worker.safety import template_failures
from worker.variants import gather as gather_ab_tests

from .admin_auth import admin_required
from .charts import reason_trend, share_bar, weekly_bars
from .security import no_store
from .services import Services, get_services

bp = Blueprint("admin", __name__, url_prefix="/admin")
MAX_COMMENTS_SHOWN = 200
# The email template gallery (issue 5's blueprint), linked from the nav when installed.
TEMPLATES_ENDPOINT = "admin_templates.gallery"


@bp.app_template_filter("money")
def _money(value: object, currency: str = "USD") -> str:
    """'$1,234.56', '€20.00': the dashboard's amounts (Decimal in, text out)."""
    return format_money(value, currency, "en")  # type: ignore[arg-type]


@bp.context_processor
def _nav() -> dict[str, str | None]:
    has_gallery = TEMPLATES_ENDPOINT in current_app.view_functions
    return {"templates_url": url_for(TEMPLATES_ENDPOINT) if has_gallery else None}


bp.after_request(no_store)


@bp.errorhandler(RedisError)
def _redis_down(exc: RedisError) -> ResponseReturnValue:
    message = f"Redis is not answering ({type(exc).__name__}); try again in a moment.\n"
    return Response(message, 503, mimetype="text/plain")


def _filters() -> Filters:
    args = request.args
    return parse_filters(args.get("membership"), args.get("from"), args.get("to"))


@bp.get("/", strict_slashes=False)
@admin_required
def dashboard() -> ResponseReturnValue:
    services = get_services()
    memberships = sorted(
        services.store.cancellation_memberships().items(), key=lambda kv: kv[1].lower()
    )
    form = {k: request.args.get(k, "") for k in ("membership", "from", "to")}
    try:
        filters = _filters()
    except FilterError as exc:
        page = render_template(
            "admin.html", lang="en", form=form, memberships=memberships, error=str(exc)
        )
        return page, 400
    insights = _insights(filters)
    before = previous_period(filters)
    previous = _insights(before) if before else None
    reason = request.args.get("reason", "")
    shown = [c for c in insights.comments if not reason or c.reason_id == reason]
    store = services.store
    names = store.member_names(sorted({c.member_key for c in shown[:MAX_COMMENTS_SHOWN]}))
    return render_template(
        "admin.html",
        lang="en",
        form=form,
        memberships=memberships,
        membership_title=dict(memberships).get(filters.membership_id, filters.membership_id),
        insights=insights,
        week_chart=weekly_bars(insights.weeks),
        reason_chart=reason_trend(insights.months, {r.id: r.label for r in insights.reasons}),
        share_bar=share_bar,
        previous=previous,
        comment_reason=reason,
        comments_total=len(shown),
        comments=shown[:MAX_COMMENTS_SHOWN],
        names=names,
        unsubscribes=count_unsubscribes(store.suppressions(), filters),
        query=request.query_string.decode(),
        template_failures=template_failures(services.store),
        ab_tests=_ab_tests(services),
    )


def _insights(filters: Filters) -> Insights:
    services = get_services()
    locale = services.settings.default_locale
    return compute(gather(services.store, filters), filters, services.reasons, locale, locale)


def _ab_tests(services: Services) -> list:
    """The playbook's A/B tests with their figures; none when the playbook cannot be read
    (the gallery and `playbook check` say why)."""
    try:
        playbook = load_playbook(services.settings.playbook_path)
    except (PlaybookError, OSError):
        return []
    return gather_ab_tests(services.store, playbook)


@bp.get("/export.csv")
@admin_required
def export_csv() -> ResponseReturnValue:
    try:
        filters = _filters()
    except FilterError as exc:
        return Response(f"{exc}\n", 400, mimetype="text/plain")
    services = get_services()
    locale = services.settings.default_locale
    out = io.StringIO()
    out.write("\ufeff")  # so spreadsheet programs read the file as UTF-8 (accents, names)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(
        export_rows(gather(services.store, filters), filters, services.reasons, locale, locale)
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="farewell-cancellations-{stamp}.csv"',
        },
    )
